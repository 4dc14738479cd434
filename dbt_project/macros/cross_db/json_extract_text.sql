{#- The text value of a top-level key of a JSON column (null when absent or JSON null).

    dlt lands free-form objects (Stripe `metadata`) as JSON columns: `json` in DuckDB and
    PostgreSQL (`jsonb` works the same), `variant` in Snowflake. -#}
{% macro json_extract_text(column, key) -%}
    {{ return(adapter.dispatch('json_extract_text', 'concord')(column, key)) }}
{%- endmacro %}

{% macro default__json_extract_text(column, key) -%}
    (cast({{ column }} as json) ->> '{{ key }}')
{%- endmacro %}

{% macro duckdb__json_extract_text(column, key) -%}
    json_extract_string({{ column }}, '$.{{ key }}')
{%- endmacro %}

{% macro snowflake__json_extract_text(column, key) -%}
    ({{ column }}:"{{ key }}"::varchar)
{%- endmacro %}
