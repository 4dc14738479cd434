{#- A VAT / tax id as a comparable key: upper case, letters and digits only
    ("DE 944.004.523" -> "DE944004523", "55-6711792" -> "556711792"); null when fewer than
    six characters are left (placeholders such as "N/A" or "-"). Given the record's
    `country_code`, a European VAT number typed without its country prefix ("123456789" for a
    British company) gets the prefix, so the CRM's loose spelling and the ERP's canonical one
    agree. -#}
{% macro normalize_vat(expression, country_code=none) -%}
    {%- set compact = concord.regexp_replace_all('upper(' ~ expression ~ ')', '[^A-Z0-9]', '') -%}
    case
        when length({{ compact }}) < 6 then null
        {%- if country_code is not none %}
        when upper({{ country_code }}) in ({{ "'" ~ var('vat_prefix_countries') | join("', '") ~ "'" }})
         and {{ concord.regexp_replace_all('substr(' ~ compact ~ ', 1, 2)', '[A-Z]', '') }} <> ''
            then upper({{ country_code }}) || {{ compact }}
        {%- endif %}
        else {{ compact }}
    end
{%- endmacro %}
