-- Approved, billable time per project and month against what billing invoiced for it: the
-- evidence a firm that invoices in Stripe has. Harvest's `is_billed` is no evidence there: with
-- Harvest's invoicing off it is only a mark someone may set by hand (DECISIONLOG, "Unbilled
-- time").
--   approved_amount  billable, approved (`is_closed`) Harvest time spent in the month, at hours x
--                    the entry's billable rate, in the project's currency;
--   billed_amount    the time lines (`kind` = time in the line's metadata) for the project's code
--                    of finalised, non-void Stripe invoices, whose billing period starts in the
--                    month;
--   unbilled_amount  approved less billed, never below 0;
--   billing_due_at   when the month's time is overdue for billing: `tm_billing_sla_days` into the
--                    next month (T&M time is invoiced on the 12th of the next month).
with

time_entries as (

    select * from {{ ref('time_entries') }}
    where is_billable
      and is_approved

),

invoice_lines as (

    select * from {{ ref('stg_stripe__invoice_lines') }}

),

invoices as (

    select invoice_id, status, finalized_at from {{ ref('stg_stripe__invoices') }}

),

approved as (

    select
        project_id,
        project_code,
        spent_month,
        min(customer_id) as customer_id,
        min(currency_code) as currency_code,
        sum(hours) as approved_hours,
        sum(billable_value) as approved_amount,
        count(*) as time_entries
    from time_entries
    group by project_id, project_code, spent_month

),

billed as (

    select
        invoice_lines.project_code,
        cast({{ dbt.date_trunc('month', 'invoice_lines.period_start_at') }} as date) as billed_month,
        sum(invoice_lines.quantity) as billed_hours,
        sum(invoice_lines.amount) as billed_amount,
        count(distinct invoice_lines.invoice_id) as invoices
    from invoice_lines
    inner join invoices
        on invoice_lines.invoice_id = invoices.invoice_id
    where invoice_lines.line_kind = 'time'
      and invoice_lines.project_code is not null
      and invoices.finalized_at is not null
      and invoices.status <> 'void'
    group by invoice_lines.project_code, cast({{ dbt.date_trunc('month', 'invoice_lines.period_start_at') }} as date)

)

select
    -- ids
    {{ concord.surrogate_key(['approved.project_id', 'approved.spent_month']) }} as unbilled_time_key,
    approved.project_id,
    approved.project_code,
    approved.customer_id,

    -- strings
    approved.currency_code,

    -- numerics
    approved.time_entries,
    approved.approved_hours,
    cast(approved.approved_amount as decimal(18, 2)) as approved_amount,
    coalesce(billed.billed_hours, 0) as billed_hours,
    cast(coalesce(billed.billed_amount, 0) as decimal(18, 2)) as billed_amount,
    coalesce(billed.invoices, 0) as invoices,
    cast(case
        when approved.approved_amount > coalesce(billed.billed_amount, 0)
            then approved.approved_amount - coalesce(billed.billed_amount, 0)
        else 0
    end as decimal(18, 2)) as unbilled_amount,

    -- dates
    approved.spent_month,

    -- timestamps
    cast({{ dbt.dateadd('day', var('tm_billing_sla_days'), dbt.dateadd('month', 1, 'approved.spent_month')) }}
        as timestamp) as billing_due_at

from approved
left join billed
    on approved.project_code = billed.project_code
    and approved.spent_month = billed.billed_month
