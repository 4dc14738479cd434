-- Cross rates for every pair of currencies and every calendar day: `amount * rate` converts an
-- amount in `from_currency` to `to_currency` on `rate_date`. Used by the `convert_currency` macro.
with

daily as (

    select * from {{ ref('int_fx_rates_daily') }}

)

select
    {{ concord.surrogate_key(['from_rate.rate_date', 'from_rate.currency_code', 'to_rate.currency_code']) }} as fx_rate_id,
    from_rate.rate_date,
    from_rate.currency_code as from_currency,
    to_rate.currency_code as to_currency,
    to_rate.units_per_base / from_rate.units_per_base as rate,
    case
        when from_rate.rate_source in ('published', 'base') and to_rate.rate_source in ('published', 'base')
            then 'published'
        when 'backfilled' in (from_rate.rate_source, to_rate.rate_source) then 'backfilled'
        else 'carried_forward'
    end as rate_source
from daily as from_rate
inner join daily as to_rate
    on from_rate.rate_date = to_rate.rate_date
