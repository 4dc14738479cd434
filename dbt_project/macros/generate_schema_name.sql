{#- Models land in the schema their folder names (staging, core, reconciliation, ...), not in
    `<target>_<schema>`: there is one warehouse and one set of marts. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name | trim if custom_schema_name else target.schema }}
{%- endmacro %}
