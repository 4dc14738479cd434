-- Every place the four systems disagree, one row per problem, with who owns the fix and what
-- it puts at risk: the exceptions of `int_reconciliation__exceptions` and the CRM's stale
-- financial statuses (`exc_crm_financial_status_stale`), with `first_detected_at` carried
-- from earlier runs by `reconciliation_exception_history`. Finance operations work it largest
-- `amount_at_risk_reporting` first. Contract enforced: other systems read it.
with

exceptions as (

    select
        exception_id,
        exception_type,
        domain,
        severity,
        owner_system,
        customer_id,
        source_system,
        source_record_id,
        related_record_ids,
        amount_at_risk,
        currency,
        amount_at_risk_reporting,
        detected_at,
        details
    from {{ ref('int_reconciliation__exceptions') }}

    union all

    select
        exception_id,
        exception_type,
        domain,
        severity,
        owner_system,
        customer_id,
        source_system,
        source_record_id,
        related_record_ids,
        amount_at_risk,
        currency,
        amount_at_risk_reporting,
        detected_at,
        details
    from {{ ref('exc_crm_financial_status_stale') }}

),

history as (

    select exception_id, first_detected_at from {{ ref('reconciliation_exception_history') }}

)

select
    exceptions.exception_id,
    exceptions.exception_type,
    exceptions.domain,
    exceptions.severity,
    exceptions.owner_system,
    exceptions.customer_id,
    exceptions.source_system,
    exceptions.source_record_id,
    exceptions.related_record_ids,
    exceptions.amount_at_risk,
    exceptions.currency,
    exceptions.amount_at_risk_reporting,
    exceptions.detected_at,
    coalesce(history.first_detected_at, exceptions.detected_at) as first_detected_at,
    exceptions.details
from exceptions
left join history
    on exceptions.exception_id = history.exception_id
