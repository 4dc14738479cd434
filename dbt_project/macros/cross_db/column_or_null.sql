{#- A source column, or a typed null when the table lacks it: dlt adds a column only when a
    first non-null value arrives, so an optional property nobody has filled in yet (HubSpot's
    `hs_additional_domains`) has no column. -#}
{% macro column_or_null(relation, column_name, data_type) -%}
    {%- set present = [] -%}
    {%- if execute -%}
        {%- set found = adapter.get_relation(relation.database, relation.schema, relation.identifier) -%}
        {%- if found is not none -%}
            {%- for column in adapter.get_columns_in_relation(found) -%}
                {%- if column.name | lower == column_name | lower -%}{%- do present.append(column.name) -%}{%- endif -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    {%- if present -%}{{ adapter.quote(present[0]) }}{%- else -%}cast(null as {{ data_type }}){%- endif -%}
{%- endmacro %}
