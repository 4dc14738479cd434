{#- The moment the reconciliation judges the data at: `CONCORD_AS_OF` (an ISO timestamp, UTC)
    when set, else now. Tests and the sandbox demo set it to the sandbox's clock, whose history
    does not run on the wall clock. -#}
{% macro as_of() -%}
    {%- set value = env_var('CONCORD_AS_OF', '') -%}
    {%- if value -%}
        cast('{{ value }}' as timestamp)
    {%- else -%}
        cast(current_timestamp as timestamp)
    {%- endif -%}
{%- endmacro %}
