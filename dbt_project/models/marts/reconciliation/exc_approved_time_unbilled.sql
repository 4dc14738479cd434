-- Approved billable time left off the invoices (margin leakage): Harvest time entries that
-- are billable, approved (`is_closed`) and not invoiced (`is_billed`), grouped by project and
-- the month M they were spent in, once the billing cycle has passed: the as-of date is at
-- least `tm_billing_sla_days` into month M+1 (T&M time is invoiced on the 12th of M+1 or the
-- next weekday). One exception per project and month (`details.billing_month` 'YYYY-MM');
-- owned by billing (Stripe issues the invoices). At risk: sum of hours x billable rate, in
-- the project's client currency; related: the project and its time entries.
with

time_entries as (

    select * from {{ ref('time_entries') }}
    where is_billable
      and is_approved
      and not is_billed

),

overdue_entries as (

    select
        time_entries.*,
        {{ dbt.dateadd('day', var('tm_billing_sla_days'), dbt.dateadd('month', 1, 'time_entries.spent_month')) }}
            as billing_due_at
    from time_entries

),

per_project_month as (

    select
        project_id,
        spent_month,
        min(customer_id) as customer_id,
        min(currency_code) as currency_code,
        min(billing_due_at) as billing_due_at,
        sum(hours) as hours,
        sum(hours * coalesce(billable_rate, 0)) as amount,
        count(*) as time_entries
    from overdue_entries
    where billing_due_at <= {{ as_of() }}
    group by project_id, spent_month

),

-- the project, then its unbilled time entries
related as (

    select
        project_id,
        spent_month,
        {{ concord.json_array_agg('record_ref', 'ref_position, record_ref') }} as related_record_ids
    from (
        select project_id, spent_month, 0 as ref_position, {{ concord.record_ref('harvest', 'project', 'project_id') }} as record_ref
        from per_project_month

        union all

        select overdue_entries.project_id, overdue_entries.spent_month, 1,
            {{ concord.record_ref('harvest', 'time_entry', 'overdue_entries.time_entry_id') }}
        from overdue_entries
        where overdue_entries.billing_due_at <= {{ as_of() }}
    ) as refs
    group by project_id, spent_month

),

exceptions as (

    select
        'approved_time_unbilled' as exception_type,
        'billing' as domain,
        'stripe' as owner_system,
        per_project_month.customer_id,
        'harvest' as source_system,
        cast(per_project_month.project_id as {{ dbt.type_string() }}) as source_record_id,
        {{ concord.format_year_month('per_project_month.spent_month') }} as subject_qualifier,
        related.related_record_ids,
        per_project_month.amount as amount_at_risk,
        per_project_month.currency_code as currency,
        {{ concord.json_build_object({
            'billing_month': concord.format_year_month('per_project_month.spent_month'),
            'hours': 'per_project_month.hours',
            'time_entries': 'per_project_month.time_entries',
            'billing_due_at': 'per_project_month.billing_due_at',
        }) }} as details
    from per_project_month
    inner join related
        on per_project_month.project_id = related.project_id
        and per_project_month.spent_month = related.spent_month

)

{{ concord.reconciliation_exception_columns('exceptions') }}
