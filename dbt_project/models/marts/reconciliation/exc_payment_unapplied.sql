-- A payment billing has collected that the ERP has not applied: the Stripe invoice is paid,
-- the ERP posting SLA has passed since (`erp_posting_sla_days` after `paid_at`), the ERP
-- invoice exists, and no payment is reconciled with it (Odoo's invoice-payment link). The
-- payment may sit in the ERP unreconciled (then it is named in `related_record_ids`, when the
-- payments mart could pair it with the charge) or be missing there. An invoice Stripe counts
-- paid with nothing collected (credited in full) has no payment to apply. Subject: the Stripe
-- invoice; owned by the ERP. At risk: the amount Stripe collected (`amount_paid`), in the
-- invoice's currency.
with

invoices as (

    select * from {{ ref('invoices') }}
    where stripe_invoice_id is not null
      and stripe_status = 'paid'
      and erp_move_id is not null
      and stripe_paid_at is not null
      and stripe_amount_paid > {{ var('amount_tolerance') }}
      and {{ dbt.dateadd('day', var('erp_posting_sla_days'), 'stripe_paid_at') }} <= {{ as_of() }}

),

invoice_payments as (

    select * from {{ ref('stg_erp__invoice_payments') }}

),

erp_payments as (

    select * from {{ ref('stg_erp__payments') }}

),

applied_moves as (

    select distinct invoice_payments.move_id
    from invoice_payments
    inner join erp_payments
        on invoice_payments.payment_id = erp_payments.payment_id
    where erp_payments.state <> 'cancel'

),

payments as (

    select
        stripe_invoice_id,
        min(stripe_charge_id) as stripe_charge_id,
        min(erp_payment_id) as erp_payment_id
    from {{ ref('payments') }}
    where stripe_invoice_id is not null
    group by stripe_invoice_id

),

unapplied as (

    select
        invoices.*,
        payments.stripe_charge_id,
        payments.erp_payment_id
    from invoices
    left join payments
        on invoices.stripe_invoice_id = payments.stripe_invoice_id
    where not exists (
        select 1 from applied_moves
        where applied_moves.move_id = invoices.erp_move_id
    )

),

related as (

    select
        stripe_invoice_id,
        {{ concord.json_array_agg('record_ref', 'ref_position') }} as related_record_ids
    from (
        select stripe_invoice_id, 0 as ref_position, {{ concord.record_ref('stripe', 'invoice', 'stripe_invoice_id') }} as record_ref
        from unapplied
        union all
        select stripe_invoice_id, 1, {{ concord.record_ref('stripe', 'charge', 'stripe_charge_id') }}
        from unapplied where stripe_charge_id is not null
        union all
        select stripe_invoice_id, 2, {{ concord.record_ref('erp', 'account_move', 'erp_move_id') }}
        from unapplied
        union all
        select stripe_invoice_id, 3, {{ concord.record_ref('erp', 'account_payment', 'erp_payment_id') }}
        from unapplied where erp_payment_id is not null
    ) as refs
    group by stripe_invoice_id

),

exceptions as (

    select
        'payment_unapplied' as exception_type,
        'collections' as domain,
        'erp' as owner_system,
        unapplied.customer_id,
        'stripe' as source_system,
        unapplied.stripe_invoice_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as subject_qualifier,
        related.related_record_ids,
        unapplied.stripe_amount_paid as amount_at_risk,
        unapplied.stripe_currency_code as currency,
        {{ concord.json_build_object({
            'invoice_number': 'unapplied.invoice_number',
            'erp_move_name': 'unapplied.erp_move_name',
            'paid_at': 'unapplied.stripe_paid_at',
            'erp_posting_due_at': dbt.dateadd('day', var('erp_posting_sla_days'), 'unapplied.stripe_paid_at'),
            'erp_payment_state': 'unapplied.erp_payment_state',
            'erp_payment_found': 'unapplied.erp_payment_id is not null',
        }) }} as details
    from unapplied
    inner join related
        on unapplied.stripe_invoice_id = related.stripe_invoice_id

)

{{ concord.reconciliation_exception_columns('exceptions') }}
