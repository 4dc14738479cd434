-- One rate per currency and calendar day: units of the currency per one unit of the base
-- currency (the currency of the company the ERP keeps its rates for, USD here).
-- The ERP publishes rates on business days only: a day without a rate takes the last rate
-- published before it (weekends, holidays, today before the morning's rate); a day before the
-- first published rate takes the first one (`backfilled`). The base currency is 1 every day.
with

calendar as (

    select calendar_date from {{ ref('int_fx_calendar') }}

),

currency_rates as (

    select * from {{ ref('stg_erp__currency_rates') }}

),

currencies as (

    select * from {{ ref('stg_erp__currencies') }}

),

companies as (

    select * from {{ ref('stg_erp__companies') }}

),

-- the company whose rates are used: the root of the company tree (lowest id if several)
rate_company as (

    select
        companies.company_id,
        currencies.currency_code as base_currency_code
    from companies
    inner join currencies
        on companies.currency_id = currencies.currency_id
    where companies.parent_company_id is null
    order by companies.company_id
    limit 1

),

published as (

    select
        currencies.currency_code,
        currency_rates.rate_date,
        currency_rates.rate
    from currency_rates
    inner join rate_company
        on currency_rates.company_id = rate_company.company_id
    inner join currencies
        on currency_rates.currency_id = currencies.currency_id
    where currency_rates.rate > 0

),

-- one rate per currency and day (the latest written, should a day have two)
deduplicated as (

    select currency_code, rate_date, max(rate) as rate
    from published
    group by currency_code, rate_date

),

validity as (

    select
        currency_code,
        rate_date,
        rate,
        lead(rate_date) over (partition by currency_code order by rate_date) as next_rate_date,
        row_number() over (partition by currency_code order by rate_date) = 1 as is_first
    from deduplicated

),

daily as (

    select
        calendar.calendar_date as rate_date,
        validity.currency_code,
        validity.rate as units_per_base,
        validity.rate_date as published_rate_date,
        case
            when calendar.calendar_date = validity.rate_date then 'published'
            when calendar.calendar_date < validity.rate_date then 'backfilled'
            else 'carried_forward'
        end as rate_source
    from calendar
    inner join validity
        on (calendar.calendar_date >= validity.rate_date or validity.is_first)
        and (validity.next_rate_date is null or calendar.calendar_date < validity.next_rate_date)

),

base as (

    select
        calendar.calendar_date as rate_date,
        rate_company.base_currency_code as currency_code,
        1.0 as units_per_base,
        calendar.calendar_date as published_rate_date,
        'base' as rate_source
    from calendar
    cross join rate_company

),

unioned as (

    select * from daily
    where currency_code not in (select base_currency_code from rate_company)
    union all
    select * from base

)

select
    {{ concord.surrogate_key(['unioned.rate_date', 'unioned.currency_code']) }} as fx_rate_daily_id,
    unioned.rate_date,
    unioned.currency_code,
    rate_company.base_currency_code,
    cast(unioned.units_per_base as double precision) as units_per_base,
    unioned.published_rate_date,
    unioned.rate_source
from unioned
cross join rate_company
