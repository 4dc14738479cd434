-- One row per customer invoice, with the billing (Stripe) and ERP views of it side by side:
-- a finalised Stripe invoice and the ERP `out_invoice` whose `ref` is its number share a row.
-- Stripe invoices the ERP lacks (and drafts, which have no number yet) have null `erp_*`
-- columns; ERP invoices no Stripe invoice explains have null `stripe_*` columns (as do
-- second ERP postings of one number, flagged `is_duplicate_erp_posting`).
-- Stripe owns invoice issuance and invoice/payment status; the ERP owns the AR ledger.
-- `_functional` and `_reporting` amounts are converted at `conversion_date`: the ERP's
-- accounting date (as the ERP converts its own ledger), else the Stripe finalisation date.
with

stripe_invoices as (

    select * from {{ ref('stg_stripe__invoices') }}

),

stripe_credit_notes as (

    select * from {{ ref('stg_stripe__credit_notes') }}

),

account_moves as (

    select * from {{ ref('stg_erp__account_moves') }}

),

erp_currencies as (

    select * from {{ ref('stg_erp__currencies') }}

),

erp_companies as (

    select * from {{ ref('stg_erp__companies') }}

),

sale_orders as (

    select * from {{ ref('stg_erp__sale_orders') }}

),

customer_records as (

    select * from {{ ref('int_customer_records') }}

),

customers as (

    select customer_id, legal_entity_id from {{ ref('customers') }}

),

credit_notes_per_invoice as (

    select
        invoice_id,
        cast(sum(case when status <> 'void' then total else 0 end) as decimal(18, 2)) as credit_note_total,
        cast(sum(case when status <> 'void' then subtotal else 0 end) as decimal(18, 2)) as credit_note_subtotal,
        count(*) as credit_notes
    from stripe_credit_notes
    group by invoice_id

),

refunds_per_invoice as (

    select
        reversed_entry_id as move_id,
        cast(sum(case when state = 'posted' then amount_total else 0 end) as decimal(18, 2)) as refund_total,
        cast(sum(case when state = 'posted' then amount_untaxed else 0 end) as decimal(18, 2)) as refund_untaxed,
        count(*) as refunds
    from account_moves
    where move_type = 'out_refund' and reversed_entry_id is not null
    group by reversed_entry_id

),

erp_invoices as (

    select
        account_moves.*,
        document_currency.currency_code,
        row_number() over (
            partition by account_moves.ref
            order by
                case account_moves.state when 'posted' then 0 when 'draft' then 1 else 2 end,
                account_moves.created_at desc,
                account_moves.move_id desc
        ) as ref_rank
    from account_moves
    left join erp_currencies as document_currency
        on account_moves.currency_id = document_currency.currency_id
    where account_moves.move_type = 'out_invoice'

),

paired as (

    select
        stripe_invoices.invoice_id as stripe_invoice_id,
        erp_invoices.move_id as erp_move_id,
        false as is_duplicate_erp_posting
    from stripe_invoices
    full outer join (select * from erp_invoices where ref is not null and ref_rank = 1) as erp_invoices
        on stripe_invoices.invoice_number = erp_invoices.ref

    union all

    select
        cast(null as {{ dbt.type_string() }}),
        move_id,
        ref is not null
    from erp_invoices
    where ref is null or ref_rank > 1

),

joined as (

    select
        paired.is_duplicate_erp_posting,
        stripe_invoices.invoice_id as stripe_invoice_id,
        stripe_invoices.customer_id as stripe_customer_id,
        stripe_invoices.invoice_number as stripe_invoice_number,
        stripe_invoices.project_code as stripe_project_code,
        stripe_invoices.status as stripe_status,
        stripe_invoices.currency_code as stripe_currency_code,
        stripe_invoices.total as stripe_total,
        stripe_invoices.subtotal as stripe_subtotal,
        stripe_invoices.tax as stripe_tax,
        stripe_invoices.amount_due as stripe_amount_due,
        stripe_invoices.amount_paid as stripe_amount_paid,
        stripe_invoices.amount_remaining as stripe_amount_remaining,
        coalesce(credit_notes_per_invoice.credit_note_total, 0) as stripe_credit_note_total,
        coalesce(credit_notes_per_invoice.credit_note_subtotal, 0) as stripe_credit_note_subtotal,
        stripe_invoices.is_paid_out_of_band as stripe_is_paid_out_of_band,
        stripe_invoices.due_date as stripe_due_date,
        stripe_invoices.created_at as stripe_created_at,
        stripe_invoices.finalized_at as stripe_finalized_at,
        stripe_invoices.paid_at as stripe_paid_at,
        stripe_invoices.voided_at as stripe_voided_at,
        stripe_invoices.marked_uncollectible_at as stripe_marked_uncollectible_at,
        stripe_invoices.description as stripe_description,
        erp_invoices.move_id as erp_move_id,
        erp_invoices.move_name as erp_move_name,
        erp_invoices.ref as erp_ref,
        erp_invoices.commercial_partner_id as erp_partner_id,
        erp_invoices.company_id as erp_company_id,
        erp_invoices.invoice_origin as erp_invoice_origin,
        erp_invoices.state as erp_state,
        erp_invoices.payment_state as erp_payment_state,
        erp_invoices.currency_code as erp_currency_code,
        erp_invoices.amount_total as erp_amount_total,
        erp_invoices.amount_untaxed as erp_amount_untaxed,
        erp_invoices.amount_tax as erp_amount_tax,
        erp_invoices.amount_residual as erp_amount_residual,
        erp_invoices.amount_total_signed as erp_amount_total_company,
        coalesce(refunds_per_invoice.refund_total, 0) as erp_refund_total,
        coalesce(refunds_per_invoice.refund_untaxed, 0) as erp_refund_untaxed,
        erp_invoices.invoice_date as erp_invoice_date,
        erp_invoices.invoice_date_due as erp_due_date,
        erp_invoices.accounting_date as erp_accounting_date,
        erp_invoices.created_at as erp_created_at,
        erp_invoices.updated_at as erp_updated_at
    from paired
    left join stripe_invoices
        on paired.stripe_invoice_id = stripe_invoices.invoice_id
    left join erp_invoices
        on paired.erp_move_id = erp_invoices.move_id
    left join credit_notes_per_invoice
        on stripe_invoices.invoice_id = credit_notes_per_invoice.invoice_id
    left join refunds_per_invoice
        on erp_invoices.move_id = refunds_per_invoice.move_id

),

linked as (

    select
        joined.*,
        coalesce(stripe_customer.customer_id, erp_customer.customer_id) as customer_id,
        coalesce(joined.stripe_project_code, joined.erp_invoice_origin) as project_code,
        coalesce(joined.stripe_currency_code, joined.erp_currency_code) as currency_code,
        coalesce(
            joined.erp_invoice_date,
            cast(joined.stripe_finalized_at as date),
            cast(joined.stripe_created_at as date)
        ) as invoice_date,
        -- the ERP converts at the accounting (posting) date; an invoice the ERP lacks, at finalisation
        coalesce(
            joined.erp_accounting_date,
            cast(joined.stripe_finalized_at as date),
            cast(joined.stripe_created_at as date)
        ) as conversion_date
    from joined
    left join customer_records as stripe_customer
        on stripe_customer.record_key = 'stripe:' || joined.stripe_customer_id
    left join customer_records as erp_customer
        on erp_customer.record_key = 'erp:' || cast(joined.erp_partner_id as {{ dbt.type_string() }})

),

final as (

    select
        -- ids
        {{ concord.surrogate_key([
            "case when linked.stripe_invoice_id is not null then 'stripe:' || linked.stripe_invoice_id"
            ~ " else 'erp:' || cast(linked.erp_move_id as " ~ dbt.type_string() ~ ") end"]) }} as invoice_key,
        coalesce(linked.stripe_invoice_number, linked.erp_ref) as invoice_number,
        linked.customer_id,
        coalesce(linked.erp_company_id, customers.legal_entity_id) as legal_entity_id,
        linked.project_code,
        sale_orders.sale_order_id,
        sale_orders.client_order_ref as deal_id,
        linked.stripe_invoice_id,
        linked.stripe_customer_id,
        linked.erp_move_id,
        linked.erp_move_name,
        linked.erp_partner_id,

        -- statuses
        linked.stripe_status,
        linked.erp_state,
        linked.erp_payment_state,
        case
            when linked.erp_move_id is null then null
            when linked.erp_state = 'cancel' then 'void'
            when linked.erp_state = 'draft' then 'draft'
            when linked.erp_payment_state in ('paid', 'in_payment') then 'paid'
            when linked.erp_payment_state = 'reversed' then 'credited'
            when linked.erp_payment_state = 'partial' then 'partial'
            else 'open'
        end as erp_status,

        -- amounts (document currency)
        linked.currency_code,
        linked.stripe_currency_code,
        linked.erp_currency_code,
        coalesce(linked.stripe_total, linked.erp_amount_total) as amount_total,
        linked.stripe_total,
        linked.stripe_subtotal,
        linked.stripe_tax,
        linked.stripe_amount_due,
        linked.stripe_amount_paid,
        linked.stripe_amount_remaining,
        linked.stripe_credit_note_total,
        linked.stripe_credit_note_subtotal,
        linked.erp_amount_total,
        linked.erp_amount_untaxed,
        linked.erp_amount_tax,
        linked.erp_amount_residual,
        linked.erp_refund_total,
        linked.erp_refund_untaxed,
        linked.erp_amount_total_company,
        functional_currency.currency_code as functional_currency_code,

        -- amounts (legal entity's currency and reporting currency, at the conversion date)
        {{ concord.convert_currency('coalesce(linked.stripe_total, linked.erp_amount_total)', 'linked.currency_code', 'functional_currency.currency_code', 'linked.conversion_date') }} as amount_total_functional,
        {{ concord.to_reporting_currency('coalesce(linked.stripe_total, linked.erp_amount_total)', 'linked.currency_code', 'linked.conversion_date') }} as amount_total_reporting,
        {{ concord.to_reporting_currency('linked.stripe_total', 'linked.stripe_currency_code', 'linked.conversion_date') }} as stripe_total_reporting,
        {{ concord.to_reporting_currency('linked.stripe_amount_remaining', 'linked.stripe_currency_code', 'linked.conversion_date') }} as stripe_amount_remaining_reporting,
        {{ concord.to_reporting_currency('linked.erp_amount_total', 'linked.erp_currency_code', 'linked.conversion_date') }} as erp_amount_total_reporting,
        {{ concord.to_reporting_currency('linked.erp_amount_residual', 'linked.erp_currency_code', 'linked.conversion_date') }} as erp_amount_residual_reporting,

        -- booleans
        linked.stripe_invoice_id is not null as has_stripe,
        linked.erp_move_id is not null as has_erp,
        linked.stripe_invoice_id is not null and linked.erp_move_id is not null as is_matched,
        linked.stripe_finalized_at is not null as stripe_is_finalized,
        linked.stripe_status = 'paid' as stripe_is_paid,
        linked.stripe_status = 'open' as stripe_is_open,
        linked.stripe_status = 'void' as stripe_is_void,
        linked.stripe_status = 'uncollectible' as stripe_is_uncollectible,
        linked.stripe_is_paid_out_of_band,
        linked.erp_state = 'posted' as erp_is_posted,
        linked.erp_state = 'posted' and linked.erp_payment_state in ('paid', 'in_payment') as erp_is_paid,
        linked.erp_state = 'posted' and linked.erp_payment_state in ('not_paid', 'partial') as erp_is_open,
        linked.erp_state = 'cancel' as erp_is_cancelled,
        linked.is_duplicate_erp_posting,

        -- dates
        linked.invoice_date,
        linked.conversion_date,
        coalesce(linked.stripe_due_date, linked.erp_due_date) as due_date,
        linked.stripe_due_date,
        linked.erp_invoice_date,
        linked.erp_due_date,
        linked.erp_accounting_date,

        -- timestamps
        linked.stripe_created_at,
        linked.stripe_finalized_at,
        linked.stripe_paid_at,
        linked.stripe_voided_at,
        linked.stripe_marked_uncollectible_at,
        linked.erp_created_at,
        linked.erp_updated_at

    from linked
    left join customers
        on linked.customer_id = customers.customer_id
    left join sale_orders
        on linked.project_code = sale_orders.sale_order_name
    left join erp_companies
        on coalesce(linked.erp_company_id, customers.legal_entity_id) = erp_companies.company_id
    left join erp_currencies as functional_currency
        on erp_companies.currency_id = functional_currency.currency_id

)

select * from final
