{#- An integer amount in minor units (Stripe's cents) as a decimal in major units, by currency:
    zero-decimal currencies (JPY, KRW, ...) have no minor unit, per Stripe's documentation. -#}
{% macro minor_to_major(amount, currency) -%}
    case
        when upper({{ currency }}) in ('BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG',
                                     'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF')
            then cast({{ amount }} as decimal(18, 2))
        else cast(cast({{ amount }} as decimal(20, 0)) * 0.01 as decimal(18, 2))
    end
{%- endmacro %}
