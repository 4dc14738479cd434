-- A finalised Stripe invoice (open, paid or uncollectible: not a draft, not void) with no ERP
-- customer invoice (`account_move.ref` = its number) once the ERP posting SLA has passed
-- (`erp_posting_sla_days` after finalisation). Not for a customer the ERP lacks
-- (`customer_missing_in_erp` covers its invoices). Subject: the Stripe invoice; owned by the
-- ERP. At risk: the invoice total, in its currency.
with

invoices as (

    select * from {{ ref('invoices') }}
    where stripe_invoice_id is not null
      and stripe_status in ('open', 'paid', 'uncollectible')
      and not has_erp
      and stripe_finalized_at is not null
      and {{ dbt.dateadd('day', var('erp_posting_sla_days'), 'stripe_finalized_at') }} <= {{ as_of() }}

),

reconciliation_customers as (

    select customer_id, has_erp_customer from {{ ref('int_reconciliation__customers') }}

),

exceptions as (

    select
        'invoice_missing_in_erp' as exception_type,
        'billing' as domain,
        'erp' as owner_system,
        invoices.customer_id,
        'stripe' as source_system,
        invoices.stripe_invoice_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as subject_qualifier,
        {{ concord.json_build_array([concord.record_ref('stripe', 'invoice', 'invoices.stripe_invoice_id')]) }}
            as related_record_ids,
        invoices.stripe_total as amount_at_risk,
        invoices.stripe_currency_code as currency,
        {{ concord.json_build_object({
            'invoice_number': 'invoices.invoice_number',
            'stripe_status': 'invoices.stripe_status',
            'finalized_at': 'invoices.stripe_finalized_at',
            'erp_posting_due_at': dbt.dateadd('day', var('erp_posting_sla_days'), 'invoices.stripe_finalized_at'),
        }) }} as details
    from invoices
    left join reconciliation_customers
        on invoices.customer_id = reconciliation_customers.customer_id
    -- a customer the ERP lacks is `customer_missing_in_erp`; an unidentified payer is still checked
    where coalesce(reconciliation_customers.has_erp_customer, true)

)

{{ concord.reconciliation_exception_columns('exceptions') }}
