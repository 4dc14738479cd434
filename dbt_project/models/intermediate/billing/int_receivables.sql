-- One row per receivable: an invoice the firm has issued to a client, with when it was issued,
-- when (and why) it stopped being owed, and what is still owed at the as-of moment. The CRM
-- sync (what each client owes) and the AR metrics (aging, DSO) both read it, so the CRM's
-- balances and finance's aging are one definition.
--
-- Which invoices: every Stripe invoice that was finalised (drafts are not issued), and every
-- posted or cancelled ERP customer invoice no Stripe invoice explains (a manual ledger invoice),
-- but never a second ERP posting of one number (`is_duplicate_erp_posting`, a data error).
--
-- Owed or not (DECISIONLOG.md, "Who owns which customer field": billing owns invoice and payment status, the ERP owns the AR ledger):
-- an invoice is settled at the first of
--   `paid`         billing marked it paid,
--   `void`         billing voided it (for a ledger-only invoice: the ERP cancelled it),
--   `paid_in_erp`  the ERP ledger recorded it fully paid (a bank transfer billing never saw).
-- Until then what is owed is the invoice total less its credit notes (billing's, or the ERP's
-- refunds for a ledger-only invoice) and less the part payments the ERP ledger applied to it (a
-- client paying in instalments by transfer, which billing marks paid only once all are in). An invoice billing marked uncollectible stays owed (written off in billing, still
-- due in law: a collections case). What is owed includes tax; what an invoice bills
-- (`billed_amount`) excludes it. See DECISIONLOG.md, "CRM sync" and "Tax".
with

invoices as (

    select * from {{ ref('invoices') }}

),

payments as (

    select * from {{ ref('payments') }}

),

-- when the ERP recorded each invoice paid (its latest payment applied to it), and how much of it
-- the ERP ledger has applied so far, in the invoice's currency (a payment booked in another one
-- converted at the ERP's rate of its date)
ledger_payments as (

    select
        payments.invoice_key,
        max(payments.erp_payment_date) as last_erp_payment_date,
        sum(case
            when payments.erp_state not in ('draft', 'cancel', 'canceled', 'rejected')
                then coalesce({{ concord.convert_currency('payments.erp_amount', 'payments.erp_currency_code',
                                                          'invoices.currency_code', 'payments.erp_payment_date') }}, 0)
            else 0
        end) as ledger_paid_amount
    from payments
    inner join invoices
        on payments.invoice_key = invoices.invoice_key
    where payments.has_erp
      and payments.erp_is_applied
      and payments.invoice_key is not null
    group by payments.invoice_key

),

scoped as (

    select
        invoices.*,
        invoices.has_stripe as is_billing_invoice
    from invoices
    where (invoices.has_stripe and invoices.stripe_finalized_at is not null)
       or (not invoices.has_stripe
           and invoices.has_erp
           and not invoices.is_duplicate_erp_posting
           and invoices.erp_state in ('posted', 'cancel'))

),

dated as (

    select
        scoped.invoice_key,
        scoped.invoice_number,
        scoped.customer_id,
        scoped.legal_entity_id,
        scoped.functional_currency_code,
        scoped.deal_id,
        scoped.sale_order_id,
        scoped.project_code,
        scoped.stripe_invoice_id,
        scoped.erp_move_id,
        case when scoped.is_billing_invoice then 'stripe' else 'erp' end as source_system,
        scoped.currency_code,
        case when scoped.is_billing_invoice then scoped.stripe_total else scoped.erp_amount_total end as amount_total,
        case when scoped.is_billing_invoice then scoped.stripe_credit_note_total else scoped.erp_refund_total end as credited_amount,
        -- one transfer matched with several invoices is paired with the first: never more than it owes
        least(coalesce(ledger_payments.ledger_paid_amount, 0),
              case when scoped.is_billing_invoice then scoped.stripe_total else scoped.erp_amount_total end)
            as ledger_paid_amount,
        case when scoped.is_billing_invoice then scoped.stripe_subtotal else scoped.erp_amount_untaxed end
            as amount_excluding_tax,
        case when scoped.is_billing_invoice then scoped.stripe_credit_note_subtotal else scoped.erp_refund_untaxed end
            as credited_amount_excluding_tax,
        case
            when scoped.is_billing_invoice then scoped.stripe_finalized_at
            else cast(scoped.erp_accounting_date as timestamp)
        end as issued_at,
        scoped.due_date,
        scoped.conversion_date,
        scoped.stripe_status,
        scoped.erp_status,
        case when scoped.is_billing_invoice then scoped.stripe_paid_at end as billing_paid_at,
        case
            when scoped.is_billing_invoice then scoped.stripe_voided_at
            when scoped.erp_state = 'cancel' then scoped.erp_updated_at
        end as voided_at,
        case
            when scoped.erp_is_paid
                then coalesce(cast(ledger_payments.last_erp_payment_date as timestamp), scoped.erp_updated_at)
        end as ledger_paid_at,
        case
            when scoped.is_billing_invoice and scoped.stripe_status = 'uncollectible'
                then scoped.stripe_marked_uncollectible_at
        end as marked_uncollectible_at
    from scoped
    left join ledger_payments
        on scoped.invoice_key = ledger_payments.invoice_key

),

settled as (

    select
        dated.*,
        -- the earliest of the three (each coalesce is non-null when any one is)
        least(
            coalesce(billing_paid_at, voided_at, ledger_paid_at),
            coalesce(voided_at, ledger_paid_at, billing_paid_at),
            coalesce(ledger_paid_at, billing_paid_at, voided_at)
        ) as settled_at
    from dated

),

final as (

    select
        -- ids
        invoice_key,
        invoice_number,
        customer_id,
        legal_entity_id,
        deal_id,
        sale_order_id,
        project_code,
        stripe_invoice_id,
        erp_move_id,

        -- strings
        source_system,
        currency_code,
        functional_currency_code,
        stripe_status,
        erp_status,
        case
            when billing_paid_at is not null then 'paid'
            when voided_at is not null then 'void'
            when ledger_paid_at is not null then 'paid_in_erp'
        end as settled_reason,

        -- numerics (document currency)
        amount_total,
        credited_amount,
        amount_excluding_tax,
        cast(case
            when voided_at is not null then 0
            else amount_excluding_tax - credited_amount_excluding_tax
        end as decimal(18, 2)) as billed_amount,
        ledger_paid_amount,
        cast(case
            when settled_at is null and amount_total - credited_amount - ledger_paid_amount > 0
                then amount_total - credited_amount - ledger_paid_amount
            else 0
        end as decimal(18, 2)) as open_amount,
        case
            when settled_at is null and due_date < cast({{ as_of() }} as date)
                then {{ dbt.datediff('due_date', 'cast(' ~ as_of() ~ ' as date)', 'day') }}
            else 0
        end as days_past_due,

        -- booleans
        settled_at is null and amount_total - credited_amount - ledger_paid_amount > {{ var('amount_tolerance') }}
            as is_open,
        settled_at is null and amount_total - credited_amount - ledger_paid_amount > {{ var('amount_tolerance') }}
            and due_date < cast({{ as_of() }} as date) as is_overdue,
        voided_at is not null as is_void,
        settled_at is null and marked_uncollectible_at is not null as is_uncollectible,

        -- dates
        cast(issued_at as date) as issued_date,
        due_date,
        conversion_date,

        -- timestamps
        issued_at,
        settled_at,
        billing_paid_at,
        voided_at,
        ledger_paid_at,
        marked_uncollectible_at

    from settled

)

select * from final
