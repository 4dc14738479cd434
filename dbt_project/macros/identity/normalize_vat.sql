{#- A VAT / tax id as a comparable key: upper case, letters and digits only
    ("DE 944.004.523" -> "DE944004523", "55-6711792" -> "556711792"); null when fewer than
    six characters are left (placeholders such as "N/A" or "-"). -#}
{% macro normalize_vat(expression) -%}
    case
        when length({{ concord.regexp_replace_all('upper(' ~ expression ~ ')', '[^A-Z0-9]', '') }}) >= 6
            then {{ concord.regexp_replace_all('upper(' ~ expression ~ ')', '[^A-Z0-9]', '') }}
    end
{%- endmacro %}
