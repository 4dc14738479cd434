{#- Timestamps are UTC `timestamp` (without time zone) everywhere downstream of staging. -#}

{#- Unix seconds (an integer, or a number in a string) as a UTC timestamp. -#}
{% macro epoch_to_timestamp(expression) -%}
    {{ return(adapter.dispatch('epoch_to_timestamp', 'concord')(expression)) }}
{%- endmacro %}

{% macro default__epoch_to_timestamp(expression) -%}
    cast(to_timestamp(cast({{ expression }} as double precision)) at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro duckdb__epoch_to_timestamp(expression) -%}
    make_timestamp(cast(round(cast({{ expression }} as double) * 1000000) as bigint))
{%- endmacro %}

{% macro snowflake__epoch_to_timestamp(expression) -%}
    to_timestamp_ntz(cast({{ expression }} as number(38, 6)))
{%- endmacro %}


{#- A `timestamp with time zone` as the UTC wall-clock `timestamp`. -#}
{% macro to_utc_timestamp(expression) -%}
    {{ return(adapter.dispatch('to_utc_timestamp', 'concord')(expression)) }}
{%- endmacro %}

{% macro default__to_utc_timestamp(expression) -%}
    cast(({{ expression }}) at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro snowflake__to_utc_timestamp(expression) -%}
    cast(convert_timezone('UTC', {{ expression }}) as timestamp_ntz)
{%- endmacro %}


{#- An ISO 8601 string with an offset or `Z` (HubSpot's property values) as a UTC timestamp. -#}
{% macro iso_to_utc_timestamp(expression) -%}
    {{ return(adapter.dispatch('iso_to_utc_timestamp', 'concord')(expression)) }}
{%- endmacro %}

{% macro default__iso_to_utc_timestamp(expression) -%}
    {{ concord.to_utc_timestamp('cast(nullif(' ~ expression ~ ", '') as timestamp with time zone)") }}
{%- endmacro %}

{% macro snowflake__iso_to_utc_timestamp(expression) -%}
    cast(convert_timezone('UTC', try_to_timestamp_tz(nullif({{ expression }}, ''))) as timestamp_ntz)
{%- endmacro %}
