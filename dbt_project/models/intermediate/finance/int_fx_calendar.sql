-- Every day FX rates may be asked for: from `fx_backfill_days` before the first published rate
-- to `fx_forward_days` after the later of the last rate and the as-of date (documents carry
-- due dates and close dates in the future).
with recursive

bounds as (

    select
        {{ dbt.dateadd('day', -1 * var('fx_backfill_days', 730), 'min(rate_date)') }} as first_day,
        {{ dbt.dateadd('day', var('fx_forward_days', 400),
            'case when max(rate_date) > cast(' ~ as_of() ~ ' as date) then max(rate_date) else cast(' ~ as_of() ~ ' as date) end') }} as last_day
    from {{ ref('stg_erp__currency_rates') }}

),

days (calendar_date) as (

    select cast(first_day as date) from bounds where first_day is not null

    union all

    select cast({{ dbt.dateadd('day', 1, 'days.calendar_date') }} as date)
    from days
    cross join bounds
    where days.calendar_date < cast(bounds.last_day as date)

)

select calendar_date from days
