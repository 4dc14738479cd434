-- Billing and the ERP disagree on an invoice's amount: the Stripe invoice total and the total
-- of the ERP customer invoice posted for it (`account_move.ref` = its number) differ by more
-- than `amount_tolerance` (an ERP invoice in another currency is converted at its accounting
-- date; both compared in cents). Stripe owns invoice issuance, so the ERP owns the fix.
-- Subject: the Stripe invoice. At risk: |Stripe total - ERP total|, in the Stripe invoice's
-- currency.
with

invoices as (

    select
        invoices.*,
        cast(invoices.stripe_total as decimal(18, 2)) as stripe_total_cents,
        {{ concord.convert_currency('invoices.erp_amount_total', 'invoices.erp_currency_code', 'invoices.stripe_currency_code',
                                    'invoices.conversion_date') }} as erp_total_in_stripe_currency
    from {{ ref('invoices') }} as invoices
    where invoices.stripe_invoice_id is not null
      and invoices.erp_move_id is not null

),

exceptions as (

    select
        'invoice_amount_mismatch' as exception_type,
        'billing' as domain,
        'erp' as owner_system,
        customer_id,
        'stripe' as source_system,
        stripe_invoice_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as subject_qualifier,
        {{ concord.json_build_array([
            concord.record_ref('stripe', 'invoice', 'stripe_invoice_id'),
            concord.record_ref('erp', 'account_move', 'erp_move_id')]) }} as related_record_ids,
        abs(stripe_total_cents - erp_total_in_stripe_currency) as amount_at_risk,
        stripe_currency_code as currency,
        {{ concord.json_build_object({
            'invoice_number': 'invoice_number',
            'erp_move_name': 'erp_move_name',
            'stripe_total': 'stripe_total',
            'erp_total': 'erp_amount_total',
            'erp_currency': 'erp_currency_code',
        }) }} as details
    from invoices
    where abs(stripe_total_cents - erp_total_in_stripe_currency) > {{ var('amount_tolerance') }}

)

{{ concord.reconciliation_exception_columns('exceptions') }}
