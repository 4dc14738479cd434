-- One row per customer: its financial position as the CRM shows it (`sync_hubspot__companies`),
-- every amount in the customer's billing currency. See DECISIONLOG.md, "CRM sync".
--   ar_balance            what it owes now, tax included: the open amount of its receivables
--                         (int_receivables), converted at the as-of date's rate;
--   ar_overdue_amount     the part of it past its due date;
--   ar_oldest_overdue_days days the oldest overdue invoice is past due (0 when none);
--   uncollectible_invoices open invoices billing marked uncollectible;
--   last_invoice_date     the latest issue date of a non-void invoice;
--   last_payment_date     the latest payment: a succeeded Stripe charge (net of refunds) or a
--                         posted ERP payment;
--   open_disputes_count   Stripe disputes still open (needs / under response, warnings too);
--   unbilled_wip_amount   approved, billable Harvest time at hours x the billable rate that no
--                         Stripe invoice has billed yet (int_unbilled_time, per project and
--                         month), converted at the as-of date's rate;
--   lifetime_billed       every non-void invoice net of credit notes, before tax, each converted
--                         at its invoice's conversion date;
--   open_data_issues_count the customer's reconciliation exceptions (all but the stale-CRM one).
with

customers as (

    select * from {{ ref('int_reconciliation__customers') }}

),

receivables as (

    select * from {{ ref('int_receivables') }}
    where customer_id is not null

),

payments as (

    select * from {{ ref('payments') }}
    where customer_id is not null

),

unbilled_time as (

    select * from {{ ref('int_unbilled_time') }}
    where customer_id is not null
      and unbilled_amount > 0

),

exceptions as (

    select * from {{ ref('int_reconciliation__exceptions') }}
    where customer_id is not null

),

currencies as (

    select
        customer_id,
        coalesce(billing_currency_code, '{{ var("reporting_currency") }}') as billing_currency
    from customers

),

receivables_valued as (

    select
        receivables.*,
        {{ concord.convert_currency('receivables.open_amount', 'receivables.currency_code',
                                    'currencies.billing_currency', as_of()) }} as open_amount_billing,
        {{ concord.convert_currency('receivables.billed_amount', 'receivables.currency_code',
                                    'currencies.billing_currency', 'receivables.conversion_date') }} as billed_amount_billing
    from receivables
    inner join currencies
        on receivables.customer_id = currencies.customer_id

),

receivable_totals as (

    select
        customer_id,
        sum(open_amount_billing) as ar_balance,
        sum(case when is_overdue then open_amount_billing else 0 end) as ar_overdue_amount,
        max(case when is_overdue then days_past_due else 0 end) as ar_oldest_overdue_days,
        sum(case when is_open then 1 else 0 end) as open_invoices,
        sum(case when is_overdue then 1 else 0 end) as overdue_invoices,
        sum(case when is_uncollectible and is_open then 1 else 0 end) as uncollectible_invoices,
        max(case when not is_void then issued_date end) as last_invoice_date,
        sum(billed_amount_billing) as lifetime_billed
    from receivables_valued
    group by customer_id

),

payment_totals as (

    select
        customer_id,
        max(case
            when (stripe_is_succeeded and stripe_amount - coalesce(stripe_amount_refunded, 0) > 0)
              or (has_erp and erp_state not in ('draft', 'cancel', 'canceled', 'rejected'))
                then payment_date
        end) as last_payment_date,
        sum(case when stripe_has_open_dispute then 1 else 0 end) as open_disputes_count
    from payments
    group by customer_id

),

wip_totals as (

    select
        unbilled_time.customer_id,
        sum({{ concord.convert_currency('unbilled_time.unbilled_amount', 'unbilled_time.currency_code',
                                        'currencies.billing_currency', as_of()) }}) as unbilled_wip_amount
    from unbilled_time
    inner join currencies
        on unbilled_time.customer_id = currencies.customer_id
    group by unbilled_time.customer_id

),

exception_totals as (

    select
        customer_id,
        count(*) as open_data_issues_count
    from exceptions
    group by customer_id

),

final as (

    select
        -- ids
        currencies.customer_id,

        -- strings
        currencies.billing_currency,

        -- numerics (billing currency)
        cast(coalesce(receivable_totals.ar_balance, 0) as decimal(18, 2)) as ar_balance,
        cast(coalesce(receivable_totals.ar_overdue_amount, 0) as decimal(18, 2)) as ar_overdue_amount,
        cast(coalesce(receivable_totals.ar_oldest_overdue_days, 0) as integer) as ar_oldest_overdue_days,
        cast(coalesce(wip_totals.unbilled_wip_amount, 0) as decimal(18, 2)) as unbilled_wip_amount,
        cast(coalesce(receivable_totals.lifetime_billed, 0) as decimal(18, 2)) as lifetime_billed,

        -- counts
        cast(coalesce(receivable_totals.open_invoices, 0) as integer) as open_invoices,
        cast(coalesce(receivable_totals.overdue_invoices, 0) as integer) as overdue_invoices,
        cast(coalesce(receivable_totals.uncollectible_invoices, 0) as integer) as uncollectible_invoices,
        cast(coalesce(payment_totals.open_disputes_count, 0) as integer) as open_disputes_count,
        cast(coalesce(exception_totals.open_data_issues_count, 0) as integer) as open_data_issues_count,

        -- dates
        receivable_totals.last_invoice_date,
        payment_totals.last_payment_date

    from currencies
    left join receivable_totals
        on currencies.customer_id = receivable_totals.customer_id
    left join payment_totals
        on currencies.customer_id = payment_totals.customer_id
    left join wip_totals
        on currencies.customer_id = wip_totals.customer_id
    left join exception_totals
        on currencies.customer_id = exception_totals.customer_id

)

select * from final
