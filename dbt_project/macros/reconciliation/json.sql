{#- JSON construction, portable across the warehouses Concord may target. Every argument is a
    SQL expression; keys are plain strings.

    json_build_object({'attribute': "'vat'", 'hours': 'sum(hours)'})  -> {"attribute": "vat", "hours": 12.5}
    json_build_array(["'a'", "'b'"])                                   -> ["a", "b"]
    json_array_agg('record_ref', 'record_ref')                         -> ["x", "y", ...] (an aggregate)
-#}
{% macro json_build_object(pairs) -%}
    {{ return(adapter.dispatch('json_build_object', 'concord')(pairs)) }}
{%- endmacro %}

{% macro default__json_build_object(pairs) -%}
    json_build_object({%- for key, value in pairs.items() %}'{{ key }}', {{ value }}{{ ', ' if not loop.last }}{% endfor -%})
{%- endmacro %}

{% macro duckdb__json_build_object(pairs) -%}
    json_object({%- for key, value in pairs.items() %}'{{ key }}', {{ value }}{{ ', ' if not loop.last }}{% endfor -%})
{%- endmacro %}

{% macro snowflake__json_build_object(pairs) -%}
    object_construct_keep_null({%- for key, value in pairs.items() %}'{{ key }}', {{ value }}{{ ', ' if not loop.last }}{% endfor -%})
{%- endmacro %}


{% macro json_build_array(items) -%}
    {{ return(adapter.dispatch('json_build_array', 'concord')(items)) }}
{%- endmacro %}

{% macro default__json_build_array(items) -%}
    json_build_array({{ items | join(', ') }})
{%- endmacro %}

{% macro duckdb__json_build_array(items) -%}
    json_array({{ items | join(', ') }})
{%- endmacro %}

{% macro snowflake__json_build_array(items) -%}
    array_construct({{ items | join(', ') }})
{%- endmacro %}


{#- An aggregate: the values of `expression` over the group as a JSON array, ordered by `order_by`. -#}
{% macro json_array_agg(expression, order_by) -%}
    {{ return(adapter.dispatch('json_array_agg', 'concord')(expression, order_by)) }}
{%- endmacro %}

{% macro default__json_array_agg(expression, order_by) -%}
    json_agg({{ expression }} order by {{ order_by }})
{%- endmacro %}

{% macro duckdb__json_array_agg(expression, order_by) -%}
    to_json(list({{ expression }} order by {{ order_by }}))
{%- endmacro %}

{% macro snowflake__json_array_agg(expression, order_by) -%}
    array_agg({{ expression }}) within group (order by {{ order_by }})
{%- endmacro %}
