-- One row per payment, with the billing (Stripe charge) and ERP (account_payment) views of it
-- side by side, and the invoice it pays (`invoice_key` of `invoices`).
--
-- How the two sides are paired (`match_method`):
--   invoice             both pay the same invoice: the charge's Stripe invoice, and the ERP
--                       invoice the payment is reconciled with (Odoo's link table) or, when it
--                       is reconciled with none, whose number its payment reference names;
--   amount_and_customer an ERP payment reconciled with no invoice and naming none, paired with
--                       the one charge of the same customer, currency and amount, made within
--                       `payment_match_window_days` before it, that has no ERP payment yet
--                       (and it is the only such payment for that charge).
-- Everything else stands alone: a charge the ERP has not recorded, or an ERP payment (a bank
-- transfer Stripe never saw) with no charge.
with

charges as (

    select * from {{ ref('stg_stripe__charges') }}

),

disputes as (

    select * from {{ ref('stg_stripe__disputes') }}

),

erp_payments as (

    select * from {{ ref('stg_erp__payments') }}

),

invoice_payments as (

    select * from {{ ref('stg_erp__invoice_payments') }}

),

erp_currencies as (

    select * from {{ ref('stg_erp__currencies') }}

),

erp_partners as (

    select * from {{ ref('stg_erp__partners') }}

),

customer_records as (

    select * from {{ ref('int_customer_records') }}

),

invoices as (

    select * from {{ ref('invoices') }}

),

latest_dispute as (

    select charge_id, dispute_id, status, is_open, amount
    from (
        select
            disputes.*,
            row_number() over (partition by charge_id order by created_at desc, dispute_id desc) as recency
        from disputes
    ) as ranked
    where recency = 1

),

stripe_side as (

    select
        charges.*,
        invoices.invoice_key,
        customer_records.customer_id as resolved_customer_id,
        row_number() over (
            partition by coalesce(invoices.invoice_key, 'charge:' || charges.charge_id)
            order by case when charges.status = 'succeeded' then 0 else 1 end, charges.created_at, charges.charge_id
        ) as invoice_slot
    from charges
    left join invoices
        on charges.invoice_id = invoices.stripe_invoice_id
    left join customer_records
        on customer_records.record_key = 'stripe:' || charges.customer_id

),

applied as (

    select
        payment_id,
        min(move_id) as applied_move_id,
        count(*) as applied_invoices
    from invoice_payments
    group by payment_id

),

erp_side_linked as (

    select
        erp_payments.*,
        currency.currency_code,
        coalesce(erp_partners.commercial_partner_id, erp_payments.partner_id) as customer_partner_id,
        applied.applied_move_id,
        coalesce(applied.applied_invoices, 0) as applied_invoices,
        coalesce(by_move.invoice_key, by_reference.invoice_key) as invoice_key,
        case
            when by_move.invoice_key is not null then 'reconciled'
            when by_reference.invoice_key is not null then 'payment_reference'
        end as invoice_link
    from erp_payments
    left join erp_currencies as currency
        on erp_payments.currency_id = currency.currency_id
    left join erp_partners
        on erp_payments.partner_id = erp_partners.partner_id
    left join applied
        on erp_payments.payment_id = applied.payment_id
    left join invoices as by_move
        on applied.applied_move_id = by_move.erp_move_id
    left join invoices as by_reference
        on applied.applied_move_id is null
        and not by_reference.is_duplicate_erp_posting
        and by_reference.invoice_number = coalesce(erp_payments.payment_reference, erp_payments.memo)
    where erp_payments.payment_type = 'inbound'

),

erp_side as (

    select
        erp_side_linked.*,
        customer_records.customer_id as resolved_customer_id,
        row_number() over (
            partition by coalesce(erp_side_linked.invoice_key, 'payment:' || cast(erp_side_linked.payment_id as {{ dbt.type_string() }}))
            order by case when erp_side_linked.state = 'cancel' then 1 else 0 end, erp_side_linked.payment_date, erp_side_linked.payment_id
        ) as invoice_slot
    from erp_side_linked
    left join customer_records
        on customer_records.record_key = 'erp:' || cast(erp_side_linked.customer_partner_id as {{ dbt.type_string() }})

),

paired_by_invoice as (

    select
        stripe_side.charge_id,
        erp_side.payment_id,
        case when stripe_side.charge_id is not null and erp_side.payment_id is not null then 'invoice' end as match_method
    from (select * from stripe_side where invoice_key is not null) as stripe_side
    full outer join (select * from erp_side where invoice_key is not null) as erp_side
        on stripe_side.invoice_key = erp_side.invoice_key
        and stripe_side.invoice_slot = erp_side.invoice_slot

),

unpaired_charges as (

    select stripe_side.*
    from stripe_side
    where stripe_side.status = 'succeeded'
      and stripe_side.resolved_customer_id is not null
      and not exists (
          select 1 from paired_by_invoice
          where paired_by_invoice.charge_id = stripe_side.charge_id
            and paired_by_invoice.payment_id is not null
      )

),

unlinked_erp_payments as (

    select * from erp_side where invoice_key is null and resolved_customer_id is not null

),

amount_candidates as (

    select
        unpaired_charges.charge_id,
        unlinked_erp_payments.payment_id,
        count(*) over (partition by unpaired_charges.charge_id) as candidates_for_charge,
        count(*) over (partition by unlinked_erp_payments.payment_id) as candidates_for_payment
    from unpaired_charges
    inner join unlinked_erp_payments
        on unpaired_charges.resolved_customer_id = unlinked_erp_payments.resolved_customer_id
        and unpaired_charges.currency_code = unlinked_erp_payments.currency_code
        and unpaired_charges.amount - unpaired_charges.amount_refunded = unlinked_erp_payments.amount
        and unlinked_erp_payments.payment_date >= cast(unpaired_charges.created_at as date)
        and unlinked_erp_payments.payment_date <= cast({{ dbt.dateadd('day', var('payment_match_window_days', 30), 'unpaired_charges.created_at') }} as date)

),

paired_by_amount as (

    select charge_id, payment_id, 'amount_and_customer' as match_method
    from amount_candidates
    where candidates_for_charge = 1 and candidates_for_payment = 1

),

pairs as (

    -- invoice pairs and lone invoice-linked records, minus the charges the amount match pairs
    select paired_by_invoice.*
    from paired_by_invoice
    where paired_by_invoice.charge_id is null
       or paired_by_invoice.payment_id is not null
       or paired_by_invoice.charge_id not in (select charge_id from paired_by_amount)

    union all

    select * from paired_by_amount

    union all

    -- charges without an invoice
    select charge_id, cast(null as bigint), cast(null as {{ dbt.type_string() }})
    from stripe_side
    where invoice_key is null
      and charge_id not in (select charge_id from paired_by_amount)

    union all

    -- ERP payments linked to no invoice and not paired by amount
    select cast(null as {{ dbt.type_string() }}), payment_id, cast(null as {{ dbt.type_string() }})
    from erp_side
    where invoice_key is null
      and payment_id not in (select payment_id from paired_by_amount)

),

joined as (

    select
        -- ids
        {{ concord.surrogate_key([
            "case when pairs.charge_id is not null then 'stripe:' || pairs.charge_id"
            ~ " else 'erp:' || cast(pairs.payment_id as " ~ dbt.type_string() ~ ") end"]) }} as payment_key,
        coalesce(stripe_side.invoice_key, erp_side.invoice_key) as invoice_key,
        coalesce(stripe_side.resolved_customer_id, erp_side.resolved_customer_id) as customer_id,
        pairs.match_method,
        stripe_side.charge_id as stripe_charge_id,
        stripe_side.invoice_id as stripe_invoice_id,
        stripe_side.customer_id as stripe_customer_id,
        latest_dispute.dispute_id as stripe_dispute_id,
        erp_side.payment_id as erp_payment_id,
        erp_side.payment_name as erp_payment_name,
        erp_side.customer_partner_id as erp_partner_id,
        coalesce(erp_side.company_id, invoices.legal_entity_id) as legal_entity_id,
        erp_side.applied_move_id as erp_applied_move_id,

        -- strings
        stripe_side.status as stripe_status,
        stripe_side.payment_method_type as stripe_payment_method_type,
        latest_dispute.status as stripe_dispute_status,
        erp_side.state as erp_state,
        erp_side.memo as erp_memo,
        erp_side.payment_reference as erp_payment_reference,
        erp_side.invoice_link as erp_invoice_link,
        coalesce(stripe_side.currency_code, erp_side.currency_code) as currency_code,
        stripe_side.currency_code as stripe_currency_code,
        erp_side.currency_code as erp_currency_code,

        -- numerics (document currency)
        cast(coalesce(stripe_side.amount - stripe_side.amount_refunded, erp_side.amount) as decimal(18, 2)) as amount,
        stripe_side.amount as stripe_amount,
        stripe_side.amount_refunded as stripe_amount_refunded,
        latest_dispute.amount as stripe_dispute_amount,
        erp_side.amount as erp_amount,
        erp_side.applied_invoices as erp_applied_invoice_count,

        -- booleans
        stripe_side.charge_id is not null as has_stripe,
        erp_side.payment_id is not null as has_erp,
        stripe_side.charge_id is not null and erp_side.payment_id is not null as is_matched,
        coalesce(stripe_side.status = 'succeeded' and stripe_side.is_paid, false) as stripe_is_succeeded,
        stripe_side.is_refunded as stripe_is_refunded,
        stripe_side.is_disputed as stripe_is_disputed,
        coalesce(latest_dispute.is_open, false) as stripe_has_open_dispute,
        erp_side.is_reconciled as erp_is_reconciled,
        erp_side.applied_move_id is not null as erp_is_applied,

        -- dates
        coalesce(erp_side.payment_date, cast(stripe_side.created_at as date)) as payment_date,
        erp_side.payment_date as erp_payment_date,

        -- timestamps
        stripe_side.created_at as stripe_created_at,
        erp_side.created_at as erp_created_at

    from pairs
    left join stripe_side
        on pairs.charge_id = stripe_side.charge_id
    left join erp_side
        on pairs.payment_id = erp_side.payment_id
    left join latest_dispute
        on stripe_side.charge_id = latest_dispute.charge_id
    left join invoices
        on coalesce(stripe_side.invoice_key, erp_side.invoice_key) = invoices.invoice_key

)

select
    joined.*,
    {{ concord.to_reporting_currency('joined.amount', 'joined.currency_code', 'joined.payment_date') }} as amount_reporting
from joined
