{#- The internet domain of a website, an e-mail address or a bare domain, lower case, without
    scheme, "www.", port or path: "https://www.acme.co.uk/about" -> "acme.co.uk",
    "accounts@acme.de" -> "acme.de". Null unless something with a dot is left. -#}
{% macro extract_domain(expression) -%}
    {%- set stripped = concord.regexp_replace_all(
            concord.regexp_replace_all(
                concord.regexp_replace_all('lower(trim(' ~ expression ~ '))', '^.*@', ''),
                '^[a-z][a-z0-9+.-]*://', ''),
            '^www[0-9]*[.]|[/?#:].*$', '') -%}
    case when {{ stripped }} like '%_._%' then {{ stripped }} end
{%- endmacro %}
