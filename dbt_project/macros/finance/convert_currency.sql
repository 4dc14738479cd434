{#- `amount` in `from_currency` converted to `to_currency` at the ERP's rate of `on_date`
    (the last business-day rate on or before it; see `int_fx_rates`), rounded to `round_to`
    decimals (none when `round_to` is none). All arguments are SQL expressions, e.g.

        {{ convert_currency('amount_total', 'currency_code', "'" ~ var('reporting_currency') ~ "'", 'invoice_date') }}

    Null when the amount, either currency or the date is null, or a currency has no rates.
    A correlated scalar lookup into the small `int_fx_rates` table: engines decorrelate it
    into a join (DuckDB) or an index lookup (PostgreSQL). -#}
{% macro convert_currency(amount, from_currency, to_currency, on_date, round_to=2) -%}
    {%- set converted -%}
        case
            when upper({{ from_currency }}) = upper({{ to_currency }}) then ({{ amount }})
            else ({{ amount }}) * (
                select fx.rate
                from {{ ref('int_fx_rates') }} as fx
                where fx.rate_date = cast({{ on_date }} as date)
                  and fx.from_currency = upper({{ from_currency }})
                  and fx.to_currency = upper({{ to_currency }})
            )
        end
    {%- endset -%}
    {%- if round_to is none -%}
        {{ converted }}
    {%- else -%}
        cast(round(cast({{ converted }} as decimal(38, 10)), {{ round_to }}) as decimal(18, {{ round_to }}))
    {%- endif -%}
{%- endmacro %}


{#- Shorthand: to the reporting currency (`var('reporting_currency')`). -#}
{% macro to_reporting_currency(amount, from_currency, on_date, round_to=2) -%}
    {{ concord.convert_currency(amount, from_currency, "'" ~ var('reporting_currency') ~ "'", on_date, round_to) }}
{%- endmacro %}
