-- Approved billable time left off the invoices (margin leakage): a project's approved, billable
-- Harvest time of month M, valued at its billable rates, exceeds what the Stripe invoices for
-- the project and month billed for time by more than `unbilled_time_tolerance`, once the billing
-- cycle has passed (the as-of date is `tm_billing_sla_days` into month M+1). The evidence is
-- `int_unbilled_time`; Harvest's `is_billed` is not trusted (DECISIONLOG, "Unbilled time"). One
-- exception per project and month (`details.billing_month` 'YYYY-MM'); owned by billing (Stripe
-- issues the invoices). At risk: approved less billed, in the project's client currency.
with

unbilled as (

    select * from {{ ref('int_unbilled_time') }}
    where billing_due_at <= {{ as_of() }}
      and unbilled_amount > {{ var('unbilled_time_tolerance') }}

),

exceptions as (

    select
        'approved_time_unbilled' as exception_type,
        'billing' as domain,
        'stripe' as owner_system,
        customer_id,
        'harvest' as source_system,
        cast(project_id as {{ dbt.type_string() }}) as source_record_id,
        {{ concord.format_year_month('spent_month') }} as subject_qualifier,
        {{ concord.json_build_array([concord.record_ref('harvest', 'project', 'project_id')]) }} as related_record_ids,
        unbilled_amount as amount_at_risk,
        currency_code as currency,
        {{ concord.json_build_object({
            'billing_month': concord.format_year_month('spent_month'),
            'project_code': 'project_code',
            'approved_hours': 'approved_hours',
            'approved_amount': 'approved_amount',
            'billed_hours': 'billed_hours',
            'billed_amount': 'billed_amount',
            'invoices': 'invoices',
            'billing_due_at': 'billing_due_at',
        }) }} as details
    from unbilled

)

{{ concord.reconciliation_exception_columns('exceptions') }}
