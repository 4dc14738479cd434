-- The firm's business SLAs, one row per legal entity and month, from the first month with any
-- activity to the as-of month; amounts in the entity's functional currency (`_functional`) and
-- in the reporting currency (`_reporting`). Records whose legal entity is unknown (a client
-- the ERP lacks) are kept under a null legal entity ("unassigned").
--   project activation   deals won in the month (`project_activations`): how many, how many
--                        activated, within the SLA, still awaiting a project; average and
--                        longest days from close to project;
--   invoice readiness    time invoiced in the month (`invoice_readiness`): entries, hours,
--                        value, average and longest days from ready to invoiced;
--   unbilled WIP         approved, billable time spent in the month that no invoice has billed
--                        by the as-of moment (`int_unbilled_time`: approved less billed per
--                        project and month), valued at hours x billable rate (FX of the as-of
--                        date);
--   AR and aging         open receivables at the month's close (`receivable_balances`), by
--                        bucket; the buckets add up to `ar_balance`;
--   billed and DSO       invoices issued in the month, net of credit notes, not voided (FX of
--                        each invoice's conversion date); DSO = AR at the close / billed over the
--                        last `dso_window_months` (3) months x the days of that window.
{%- set dso_window_months = var('dso_window_months', 3) %}
{%- set buckets = ['current', '1_30', '31_60', '61_90', 'over_90'] %}
with

activations as (

    select * from {{ ref('project_activations') }}

),

readiness as (

    select * from {{ ref('invoice_readiness') }}

),

balances as (

    select * from {{ ref('receivable_balances') }}

),

receivables as (

    select * from {{ ref('int_receivables') }}

),

calendar as (

    select * from {{ ref('int_fx_calendar') }}

),

legal_entities as (

    select
        entities.company_id as legal_entity_id,
        entities.company_name as legal_entity_name,
        currencies.currency_code as functional_currency_code
    from {{ ref('stg_erp__companies') }} as entities
    left join {{ ref('stg_erp__currencies') }} as currencies
        on entities.currency_id = currencies.currency_id

),

first_activity as (

    select min(first_day) as first_day
    from (
        select min(issued_date) as first_day from receivables
        union all
        select min(cast(close_at as date)) from activations
        union all
        select min(spent_date) from readiness
    ) as firsts

),

months as (

    select distinct cast({{ dbt.date_trunc('month', 'calendar_date') }} as date) as month
    from calendar
    where calendar_date >= (select first_day from first_activity)
      and calendar_date <= cast({{ dbt.dateadd('second', -1, as_of()) }} as date)

),

entity_months as (

    select
        months.month,
        case
            when {{ dbt.dateadd('month', 1, 'months.month') }} < {{ as_of() }}
                then cast({{ dbt.dateadd('month', 1, 'months.month') }} as timestamp)
            else {{ as_of() }}
        end as measured_at,
        entities.legal_entity_id,
        entities.legal_entity_name,
        entities.functional_currency_code
    from months
    cross join (
        select legal_entity_id, legal_entity_name, functional_currency_code from legal_entities
        union all
        select null, 'unassigned', null
    ) as entities

),

activation_metrics as (

    select
        legal_entity_id,
        close_month as month,
        count(*) as deals_won,
        sum(case when is_activated then 1 else 0 end) as deals_activated,
        sum(case when is_within_sla then 1 else 0 end) as deals_activated_within_sla,
        sum(case when not is_activated then 1 else 0 end) as deals_awaiting_project,
        sum(case when is_sla_breached then 1 else 0 end) as deals_breaching_sla,
        avg(activation_days) as avg_activation_days,
        max(activation_days) as max_activation_days
    from activations
    group by legal_entity_id, close_month

),

readiness_metrics as (

    select
        legal_entity_id,
        invoiced_month as month,
        count(*) as time_entries_invoiced,
        sum(hours) as hours_invoiced,
        sum(billable_value_functional) as invoiced_time_value_functional,
        sum(billable_value_reporting) as invoiced_time_value_reporting,
        avg(readiness_latency_days) as avg_invoice_readiness_days,
        max(readiness_latency_days) as max_invoice_readiness_days
    from readiness
    where is_invoiced
    group by legal_entity_id, invoiced_month

),

-- each project's legal entity, as invoice readiness assigns it to its approved time
project_entities as (

    select distinct project_id, legal_entity_id, functional_currency_code
    from readiness

),

wip_metrics as (

    select
        project_entities.legal_entity_id,
        unbilled.spent_month as month,
        sum(case when unbilled.approved_hours > unbilled.billed_hours
                 then unbilled.approved_hours - unbilled.billed_hours else 0 end) as unbilled_wip_hours,
        sum({{ concord.convert_currency('unbilled.unbilled_amount', 'unbilled.currency_code',
                                        'project_entities.functional_currency_code', as_of()) }}) as unbilled_wip_amount_functional,
        sum({{ concord.to_reporting_currency('unbilled.unbilled_amount', 'unbilled.currency_code', as_of()) }})
            as unbilled_wip_amount_reporting
    from {{ ref('int_unbilled_time') }} as unbilled
    inner join project_entities
        on unbilled.project_id = project_entities.project_id
    where unbilled.unbilled_amount > 0
    group by project_entities.legal_entity_id, unbilled.spent_month

),

ar_metrics as (

    select
        legal_entity_id,
        month,
        count(*) as open_invoices,
        {%- for bucket in buckets %}
        sum(case when aging_bucket = '{{ bucket }}' then open_amount_functional else 0 end) as ar_{{ bucket }}_functional,
        sum(case when aging_bucket = '{{ bucket }}' then open_amount_reporting else 0 end) as ar_{{ bucket }}_reporting,
        {%- endfor %}
        max(days_past_due) as ar_oldest_days_past_due
    from balances
    group by legal_entity_id, month

),

billed_metrics as (

    select
        legal_entity_id,
        cast({{ dbt.date_trunc('month', 'issued_date') }} as date) as month,
        count(*) as invoices_issued,
        sum({{ concord.convert_currency('billed_amount', 'currency_code', 'functional_currency_code', 'conversion_date') }})
            as billed_functional,
        sum({{ concord.to_reporting_currency('billed_amount', 'currency_code', 'conversion_date') }})
            as billed_reporting
    from receivables
    where not is_void
    group by legal_entity_id, cast({{ dbt.date_trunc('month', 'issued_date') }} as date)

),

joined as (

    select
        entity_months.*,
        coalesce(activation_metrics.deals_won, 0) as deals_won,
        coalesce(activation_metrics.deals_activated, 0) as deals_activated,
        coalesce(activation_metrics.deals_activated_within_sla, 0) as deals_activated_within_sla,
        coalesce(activation_metrics.deals_awaiting_project, 0) as deals_awaiting_project,
        coalesce(activation_metrics.deals_breaching_sla, 0) as deals_breaching_sla,
        activation_metrics.avg_activation_days,
        activation_metrics.max_activation_days,
        coalesce(readiness_metrics.time_entries_invoiced, 0) as time_entries_invoiced,
        coalesce(readiness_metrics.hours_invoiced, 0) as hours_invoiced,
        case when entity_months.functional_currency_code is not null then coalesce(readiness_metrics.invoiced_time_value_functional, 0) end as invoiced_time_value_functional,
        coalesce(readiness_metrics.invoiced_time_value_reporting, 0) as invoiced_time_value_reporting,
        readiness_metrics.avg_invoice_readiness_days,
        readiness_metrics.max_invoice_readiness_days,
        coalesce(wip_metrics.unbilled_wip_hours, 0) as unbilled_wip_hours,
        case when entity_months.functional_currency_code is not null then coalesce(wip_metrics.unbilled_wip_amount_functional, 0) end as unbilled_wip_amount_functional,
        coalesce(wip_metrics.unbilled_wip_amount_reporting, 0) as unbilled_wip_amount_reporting,
        coalesce(ar_metrics.open_invoices, 0) as open_invoices,
        {%- for bucket in buckets %}
        case when entity_months.functional_currency_code is not null then coalesce(ar_metrics.ar_{{ bucket }}_functional, 0) end as ar_{{ bucket }}_functional,
        coalesce(ar_metrics.ar_{{ bucket }}_reporting, 0) as ar_{{ bucket }}_reporting,
        {%- endfor %}
        coalesce(ar_metrics.ar_oldest_days_past_due, 0) as ar_oldest_days_past_due,
        coalesce(billed_metrics.invoices_issued, 0) as invoices_issued,
        case when entity_months.functional_currency_code is not null then coalesce(billed_metrics.billed_functional, 0) end as billed_functional,
        coalesce(billed_metrics.billed_reporting, 0) as billed_reporting
    from entity_months
    left join activation_metrics
        on entity_months.legal_entity_id is not distinct from activation_metrics.legal_entity_id
        and entity_months.month = activation_metrics.month
    left join readiness_metrics
        on entity_months.legal_entity_id is not distinct from readiness_metrics.legal_entity_id
        and entity_months.month = readiness_metrics.month
    left join wip_metrics
        on entity_months.legal_entity_id is not distinct from wip_metrics.legal_entity_id
        and entity_months.month = wip_metrics.month
    left join ar_metrics
        on entity_months.legal_entity_id is not distinct from ar_metrics.legal_entity_id
        and entity_months.month = ar_metrics.month
    left join billed_metrics
        on entity_months.legal_entity_id is not distinct from billed_metrics.legal_entity_id
        and entity_months.month = billed_metrics.month

),

with_totals as (

    select
        joined.*,
        {% for bucket in buckets %}ar_{{ bucket }}_functional{{ ' + ' if not loop.last }}{% endfor %} as ar_balance_functional,
        {% for bucket in buckets %}ar_{{ bucket }}_reporting{{ ' + ' if not loop.last }}{% endfor %} as ar_balance_reporting,
        sum(billed_functional) over (
            partition by legal_entity_id order by month
            rows between {{ dso_window_months - 1 }} preceding and current row
        ) as billed_window_functional,
        sum(billed_reporting) over (
            partition by legal_entity_id order by month
            rows between {{ dso_window_months - 1 }} preceding and current row
        ) as billed_window_reporting,
        {{ dbt.datediff(dbt.dateadd('month', -(dso_window_months - 1), 'month'), 'measured_at', 'day') }} as dso_window_days
    from joined

)

select
    -- ids
    {{ concord.surrogate_key(["coalesce(cast(legal_entity_id as " ~ dbt.type_string() ~ "), 'unassigned')", 'month']) }}
        as legal_entity_month_id,
    legal_entity_id,

    -- strings
    legal_entity_name,
    functional_currency_code,
    '{{ var("reporting_currency") }}' as reporting_currency_code,

    -- project activation (deals closed-won in the month)
    cast(deals_won as integer) as deals_won,
    cast(deals_activated as integer) as deals_activated,
    cast(deals_activated_within_sla as integer) as deals_activated_within_sla,
    cast(deals_awaiting_project as integer) as deals_awaiting_project,
    cast(deals_breaching_sla as integer) as deals_breaching_sla,
    cast(avg_activation_days as decimal(10, 2)) as avg_activation_days,
    cast(max_activation_days as decimal(10, 2)) as max_activation_days,

    -- invoice readiness (time invoiced in the month)
    cast(time_entries_invoiced as integer) as time_entries_invoiced,
    cast(hours_invoiced as decimal(18, 2)) as hours_invoiced,
    cast(invoiced_time_value_functional as decimal(18, 2)) as invoiced_time_value_functional,
    cast(invoiced_time_value_reporting as decimal(18, 2)) as invoiced_time_value_reporting,
    cast(avg_invoice_readiness_days as decimal(10, 2)) as avg_invoice_readiness_days,
    cast(max_invoice_readiness_days as decimal(10, 2)) as max_invoice_readiness_days,

    -- unbilled WIP (time spent in the month, still unbilled at the as-of moment)
    cast(unbilled_wip_hours as decimal(18, 2)) as unbilled_wip_hours,
    cast(unbilled_wip_amount_functional as decimal(18, 2)) as unbilled_wip_amount_functional,
    cast(unbilled_wip_amount_reporting as decimal(18, 2)) as unbilled_wip_amount_reporting,

    -- AR at the month's close, by aging bucket
    cast(open_invoices as integer) as open_invoices,
    cast(ar_balance_functional as decimal(18, 2)) as ar_balance_functional,
    {%- for bucket in buckets %}
    cast(ar_{{ bucket }}_functional as decimal(18, 2)) as ar_{{ bucket }}_functional,
    {%- endfor %}
    cast(ar_balance_reporting as decimal(18, 2)) as ar_balance_reporting,
    {%- for bucket in buckets %}
    cast(ar_{{ bucket }}_reporting as decimal(18, 2)) as ar_{{ bucket }}_reporting,
    {%- endfor %}
    cast(ar_oldest_days_past_due as integer) as ar_oldest_days_past_due,

    -- billing and DSO
    cast(invoices_issued as integer) as invoices_issued,
    cast(billed_functional as decimal(18, 2)) as billed_functional,
    cast(billed_reporting as decimal(18, 2)) as billed_reporting,
    cast(case
        when functional_currency_code is not null and billed_window_functional > 0
            then ar_balance_functional / billed_window_functional * dso_window_days
        when functional_currency_code is null and billed_window_reporting > 0
            then ar_balance_reporting / billed_window_reporting * dso_window_days
    end as decimal(10, 1)) as dso_days,
    cast(dso_window_days as integer) as dso_window_days,

    -- dates
    month,

    -- timestamps
    measured_at

from with_totals
