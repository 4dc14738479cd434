-- One real client held as several records of one system (identity resolution put them in one
-- customer). One exception per extra record: every record of the system but the earliest
-- created (the primary) is a duplicate, owned by that system; related: the primary record.
-- Amount at risk 0 (a data-quality finding), in the customer's billing currency.
with

customer_records as (

    select * from {{ ref('int_customer_records') }}
    where not is_unmatched

),

reconciliation_customers as (

    select customer_id, billing_currency_code from {{ ref('int_reconciliation__customers') }}

),

objects as (

    select 'hubspot' as system, 'company' as object_name
    union all select 'erp', 'res_partner'
    union all select 'stripe', 'customer'
    union all select 'harvest', 'client'

),

duplicates as (

    select
        duplicate.customer_id,
        duplicate.system,
        duplicate.record_id,
        duplicate.record_name,
        duplicate.match_method,
        duplicate.created_at,
        primary_record.record_id as primary_record_id,
        primary_record.record_name as primary_record_name,
        objects.object_name
    from customer_records as duplicate
    inner join customer_records as primary_record
        on duplicate.customer_id = primary_record.customer_id
        and duplicate.system = primary_record.system
        and primary_record.is_primary
    inner join objects
        on duplicate.system = objects.system
    where duplicate.is_duplicate
      and not duplicate.is_primary

),

exceptions as (

    select
        'duplicate_customer' as exception_type,
        'customer' as domain,
        duplicates.system as owner_system,
        duplicates.customer_id,
        duplicates.system as source_system,
        duplicates.record_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as subject_qualifier,
        {{ concord.json_build_array([
            "duplicates.system || ':' || duplicates.object_name || ':' || duplicates.record_id",
            "duplicates.system || ':' || duplicates.object_name || ':' || duplicates.primary_record_id"]) }}
            as related_record_ids,
        0 as amount_at_risk,
        reconciliation_customers.billing_currency_code as currency,
        {{ concord.json_build_object({
            'duplicated_in': 'duplicates.system',
            'record_name': 'duplicates.record_name',
            'primary_record_id': 'duplicates.primary_record_id',
            'primary_record_name': 'duplicates.primary_record_name',
            'matched_by': 'duplicates.match_method',
        }) }} as details
    from duplicates
    left join reconciliation_customers
        on duplicates.customer_id = reconciliation_customers.customer_id

)

{{ concord.reconciliation_exception_columns('exceptions') }}
