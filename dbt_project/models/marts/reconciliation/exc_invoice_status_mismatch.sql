-- Billing and the ERP disagree on whether an invoice is owed. Stripe owns invoice and payment
-- status; two disagreements are exceptions:
--   voided in Stripe while the ERP invoice is still posted (not cancelled), once the ERP
--     posting SLA has passed since the later of the void and the ERP posting
--     (greatest(voided_at, ERP invoice created) + `erp_posting_sla_days`); owned by the ERP;
--   open or uncollectible in Stripe while the ERP shows it paid (a bank transfer recorded in
--     the ERP but not in Stripe); owned by Stripe.
-- Subject: the Stripe invoice. At risk: the Stripe invoice total, in its currency.
with

invoices as (

    select * from {{ ref('invoices') }}
    where stripe_invoice_id is not null
      and erp_move_id is not null

),

mismatches as (

    select
        invoices.*,
        'erp' as owner_system,
        'voided_in_stripe_posted_in_erp' as mismatch
    from invoices
    where stripe_status = 'void'
      and erp_state = 'posted'
      and {{ dbt.dateadd('day', var('erp_posting_sla_days'),
              'case when stripe_voided_at > erp_created_at then stripe_voided_at else erp_created_at end') }}
          <= {{ as_of() }}

    union all

    select
        invoices.*,
        'stripe' as owner_system,
        'paid_in_erp_open_in_stripe' as mismatch
    from invoices
    where stripe_status in ('open', 'uncollectible')
      and erp_is_paid

),

exceptions as (

    select
        'invoice_status_mismatch' as exception_type,
        'collections' as domain,
        owner_system,
        customer_id,
        'stripe' as source_system,
        stripe_invoice_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as subject_qualifier,
        {{ concord.json_build_array([
            concord.record_ref('stripe', 'invoice', 'stripe_invoice_id'),
            concord.record_ref('erp', 'account_move', 'erp_move_id')]) }} as related_record_ids,
        stripe_total as amount_at_risk,
        stripe_currency_code as currency,
        {{ concord.json_build_object({
            'mismatch': 'mismatch',
            'invoice_number': 'invoice_number',
            'erp_move_name': 'erp_move_name',
            'stripe_status': 'stripe_status',
            'erp_state': 'erp_state',
            'erp_payment_state': 'erp_payment_state',
        }) }} as details
    from mismatches

)

{{ concord.reconciliation_exception_columns('exceptions') }}
