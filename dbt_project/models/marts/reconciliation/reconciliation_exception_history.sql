{{
    config(
        materialized='incremental',
        unique_key='exception_id',
        incremental_strategy='delete+insert',
        full_refresh=false,
        on_schema_change='append_new_columns',
    )
}}
-- The life of every exception ever detected, carried from run to run (an incremental model
-- that a full refresh leaves alone): when it was first detected, when last, and when it was
-- resolved (no longer detected). An exception that comes back after it was resolved opens a
-- new spell: `first_detected_at` restarts and `occurrences` counts the spells.
-- `reconciliation_exceptions` reads `first_detected_at` from here.
with

current_exceptions as (

    select exception_id, exception_type, customer_id, source_system, source_record_id, detected_at
    from {{ ref('int_reconciliation__exceptions') }}

    union all

    select exception_id, exception_type, customer_id, source_system, source_record_id, detected_at
    from {{ ref('exc_crm_financial_status_stale') }}

)

{% if is_incremental() %}

, previous as (

    select * from {{ this }}

)

-- rows that change in this run: every exception detected now, and every open one that no
-- longer is (it is resolved now)
select
    coalesce(current_exceptions.exception_id, previous.exception_id) as exception_id,
    coalesce(current_exceptions.exception_type, previous.exception_type) as exception_type,
    coalesce(current_exceptions.customer_id, previous.customer_id) as customer_id,
    coalesce(current_exceptions.source_system, previous.source_system) as source_system,
    coalesce(current_exceptions.source_record_id, previous.source_record_id) as source_record_id,
    case
        when current_exceptions.exception_id is null then previous.first_detected_at
        when previous.exception_id is null or previous.resolved_at is not null then current_exceptions.detected_at
        when previous.first_detected_at < current_exceptions.detected_at then previous.first_detected_at
        else current_exceptions.detected_at
    end as first_detected_at,
    coalesce(current_exceptions.detected_at, previous.last_detected_at) as last_detected_at,
    case when current_exceptions.exception_id is null then {{ as_of() }} end as resolved_at,
    cast(case
        when previous.exception_id is null then 1
        when current_exceptions.exception_id is not null and previous.resolved_at is not null then previous.occurrences + 1
        else previous.occurrences
    end as integer) as occurrences
from current_exceptions
full outer join previous
    on current_exceptions.exception_id = previous.exception_id
where current_exceptions.exception_id is not null
   or previous.resolved_at is null

{% else %}

select
    exception_id,
    exception_type,
    customer_id,
    source_system,
    source_record_id,
    detected_at as first_detected_at,
    detected_at as last_detected_at,
    cast(null as timestamp) as resolved_at,
    cast(1 as integer) as occurrences
from current_exceptions

{% endif %}
