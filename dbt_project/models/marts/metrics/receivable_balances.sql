-- AR aging detail: one row per receivable (int_receivables) open at a month's close, for every
-- month from the first invoice to the as-of month. A month is measured at its close (the first
-- moment of the next month), the current month at the as-of moment (`measured_at`); at the
-- as-of moment these are exactly the open amounts the CRM shows (`sync_hubspot__companies`).
-- Open at a moment: issued by then, not yet settled (paid or voided in billing, or recorded
-- paid in the ERP ledger), with the total less the credit notes issued by then still owed.
-- Days past due and FX are those of `measured_at`'s date. Aging buckets: current (not yet
-- due), 1-30, 31-60, 61-90 and over 90 days past due.
with

receivables as (

    select * from {{ ref('int_receivables') }}

),

credits as (

    select * from {{ ref('int_receivable_credits') }}

),

calendar as (

    select * from {{ ref('int_fx_calendar') }}

),

-- every month from the first invoice to the month of the as-of moment
months as (

    select distinct cast({{ dbt.date_trunc('month', 'calendar_date') }} as date) as month
    from calendar
    where calendar_date >= (select min(issued_date) from receivables)
      and calendar_date <= cast({{ dbt.dateadd('second', -1, as_of()) }} as date)

),

measurements as (

    select
        month,
        case
            when {{ dbt.dateadd('month', 1, 'month') }} < {{ as_of() }}
                then cast({{ dbt.dateadd('month', 1, 'month') }} as timestamp)
            else {{ as_of() }}
        end as measured_at
    from months

),

candidates as (

    select
        measurements.month,
        measurements.measured_at,
        cast(measurements.measured_at as date) as measured_date,
        receivables.*
    from measurements
    inner join receivables
        on receivables.issued_at <= measurements.measured_at
        and (receivables.settled_at is null or receivables.settled_at > measurements.measured_at)

),

open_amounts as (

    select
        candidates.invoice_key,
        candidates.month,
        cast(candidates.amount_total - coalesce(sum(credits.amount), 0) as decimal(18, 2)) as open_amount
    from candidates
    left join credits
        on candidates.invoice_key = credits.invoice_key
        and credits.credited_at <= candidates.measured_at
    group by candidates.invoice_key, candidates.month, candidates.amount_total

),

aged as (

    select
        candidates.*,
        open_amounts.open_amount as open_amount_at_close,
        case
            when candidates.due_date < candidates.measured_date
                then {{ dbt.datediff('candidates.due_date', 'candidates.measured_date', 'day') }}
            else 0
        end as days_past_due_at_close
    from candidates
    inner join open_amounts
        on candidates.invoice_key = open_amounts.invoice_key
        and candidates.month = open_amounts.month
    where open_amounts.open_amount > {{ var('amount_tolerance') }}

)

select
    -- ids
    {{ concord.surrogate_key(['invoice_key', 'month']) }} as receivable_balance_id,
    invoice_key,
    invoice_number,
    customer_id,
    legal_entity_id,

    -- strings
    currency_code,
    functional_currency_code,
    case
        when days_past_due_at_close = 0 then 'current'
        when days_past_due_at_close <= 30 then '1_30'
        when days_past_due_at_close <= 60 then '31_60'
        when days_past_due_at_close <= 90 then '61_90'
        else 'over_90'
    end as aging_bucket,

    -- numerics
    open_amount_at_close as open_amount,
    {{ concord.convert_currency('open_amount_at_close', 'currency_code', 'functional_currency_code', 'measured_date') }}
        as open_amount_functional,
    {{ concord.to_reporting_currency('open_amount_at_close', 'currency_code', 'measured_date') }}
        as open_amount_reporting,
    days_past_due_at_close as days_past_due,

    -- dates
    month,
    measured_date,
    issued_date,
    due_date,

    -- timestamps
    measured_at

from aged
