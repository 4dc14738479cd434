{#- The shape every exception model ends in (the contract of `reconciliation_exceptions`, but
    `first_detected_at`, which the final model carries from `int_reconciliation__exception_history`).

    `relation` is a CTE (or relation) with one row per exception and these columns:
        exception_type, domain, owner_system, customer_id, source_system, source_record_id,
        subject_qualifier   what, beside the subject record, tells two exceptions of one type
                            apart (the billing month of unbilled time, the attribute of an
                            attribute mismatch); null when the subject says it all,
        related_record_ids  a JSON array of "system:object:id" strings,
        amount_at_risk, currency, details (JSON).
    It adds:
        exception_id              a hash of type, subject and qualifier: the same problem has the
                                  same id in every run;
        amount_at_risk_reporting  the amount in `var('reporting_currency')` at the as-of date's rate;
        severity                  from the reporting amount: `high` from
                                  `exception_severity_high_amount`, `medium` from
                                  `exception_severity_medium_amount`, else `low`;
        detected_at               the as-of moment the run judged the data at. -#}
{% macro reconciliation_exception_columns(relation) -%}
    select
        cast({{ concord.surrogate_key(['exception_type', 'source_system', 'source_record_id', 'subject_qualifier']) }}
            as {{ dbt.type_string() }}) as exception_id,
        cast(exception_type as {{ dbt.type_string() }}) as exception_type,
        cast(domain as {{ dbt.type_string() }}) as domain,
        cast(case
            when coalesce(amount_at_risk_reporting, amount_at_risk) >= {{ var('exception_severity_high_amount') }} then 'high'
            when coalesce(amount_at_risk_reporting, amount_at_risk) >= {{ var('exception_severity_medium_amount') }} then 'medium'
            else 'low'
        end as {{ dbt.type_string() }}) as severity,
        cast(owner_system as {{ dbt.type_string() }}) as owner_system,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(source_system as {{ dbt.type_string() }}) as source_system,
        cast(source_record_id as {{ dbt.type_string() }}) as source_record_id,
        related_record_ids,
        amount_at_risk,
        cast(currency as {{ dbt.type_string() }}) as currency,
        amount_at_risk_reporting,
        {{ as_of() }} as detected_at,
        details
    from (
        select
            exceptions.exception_type,
            exceptions.domain,
            exceptions.owner_system,
            exceptions.customer_id,
            exceptions.source_system,
            exceptions.source_record_id,
            exceptions.subject_qualifier,
            exceptions.related_record_ids,
            cast(round(cast(exceptions.amount_at_risk as decimal(38, 10)), 2) as decimal(18, 2)) as amount_at_risk,
            upper(exceptions.currency) as currency,
            {{ concord.to_reporting_currency('exceptions.amount_at_risk', 'exceptions.currency', 'cast(' ~ as_of() ~ ' as date)') }}
                as amount_at_risk_reporting,
            exceptions.details
        from {{ relation }} as exceptions
    ) as valued
{%- endmacro %}


{#- A record reference as exceptions name related records: "system:object:id". -#}
{% macro record_ref(system, object, id_expression) -%}
    ('{{ system }}:{{ object }}:' || cast({{ id_expression }} as {{ dbt.type_string() }}))
{%- endmacro %}


{#- A date's month as 'YYYY-MM'. -#}
{% macro format_year_month(date_expression) -%}
    {{ return(adapter.dispatch('format_year_month', 'concord')(date_expression)) }}
{%- endmacro %}

{% macro default__format_year_month(date_expression) -%}
    to_char({{ date_expression }}, 'YYYY-MM')
{%- endmacro %}

{% macro duckdb__format_year_month(date_expression) -%}
    strftime(cast({{ date_expression }} as date), '%Y-%m')
{%- endmacro %}
