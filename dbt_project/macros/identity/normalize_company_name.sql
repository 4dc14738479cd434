{#- A company name reduced to what identifies it, for matching across systems:
    lower case; parenthetical qualifiers dropped ("(GB)", "(old)"); dots and apostrophes
    dropped ("B.V." -> "bv"); any other punctuation is a word break ("Stonegate-Robotics");
    legal forms and "group" removed as whole words (Inc, Incorporated, Corp, Corporation, LLC,
    Ltd, Limited, plc, GmbH, AG, SAS, SA, BV, NV, Group); then all spaces removed, so
    "Stonegate Robotics Ltd", "STONEGATE ROBOTICS LIMITED" and "Stonegate-Robotics (GB)" all
    give "stonegaterobotics". Null when nothing is left.

    Words are padded to two spaces each so that adjacent legal forms ("Holding AG Ltd") are all
    found by one global replace. Patterns avoid backslashes (escaping differs by dialect). -#}
{% macro normalize_company_name(expression) -%}
    nullif(replace(
        {{ concord.regexp_replace_all(
            "' ' || replace(trim(" ~ concord.regexp_replace_all(
                concord.regexp_replace_all(
                    concord.regexp_replace_all('lower(' ~ expression ~ ')', '[(][^)]*[)]', ' '),
                    "[.'']", ''),
                '[^a-z0-9]+', ' ') ~ "), ' ', '  ') || ' '",
            ' (inc|incorporated|corp|corporation|llc|ltd|limited|plc|gmbh|ag|sas|sa|bv|nv|group) ',
            ' ') }},
        ' ', ''), '')
{%- endmacro %}
