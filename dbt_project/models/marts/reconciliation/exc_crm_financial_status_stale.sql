-- The CRM shows a financial status that no longer matches billing / the ERP: a live HubSpot
-- company (one with a `sync_hubspot__companies` row) whose financial properties, as last landed
-- from HubSpot (`raw_hubspot.companies`), differ from what Concord computes now. Compared
-- property by property: amounts within `amount_tolerance`, counts and days exactly, dates as
-- days, `financial_status` and `billing_currency` as text; `financial_status_synced_at` is
-- metadata and ignored. A property HubSpot does not hold (never created, never written, or
-- cleared) is null and differs from any value Concord has. Before the first push every company
-- is stale; after a confirmed push and a re-ingest, none is.
-- Subject: the HubSpot company. Owner: concord (reverse ETL must push). At risk: the company's
-- ar_balance, in its billing currency. Details: the differing properties, CRM and Concord values.
{#- the compared properties of the CRM contract, in its order, with how they compare -#}
{%- set properties = {
    'ar_balance': 'amount',
    'ar_overdue_amount': 'amount',
    'ar_oldest_overdue_days': 'count',
    'last_invoice_date': 'date',
    'last_payment_date': 'date',
    'open_disputes_count': 'count',
    'unbilled_wip_amount': 'amount',
    'lifetime_billed': 'amount',
    'financial_status': 'text',
    'open_data_issues_count': 'count',
    'billing_currency': 'text',
} %}
{%- set landed = [] %}
{%- if execute %}
    {%- for column in adapter.get_columns_in_relation(source('hubspot', 'companies')) %}
        {%- do landed.append(column.name | lower) %}
    {%- endfor %}
{%- endif %}

with

sync as (

    select * from {{ ref('sync_hubspot__companies') }}

),

crm as (

    select * from {{ source('hubspot', 'companies') }}

),

customer_records as (

    select record_id, customer_id from {{ ref('int_customer_records') }}
    where system = 'hubspot'

),

-- both sides of every compared property, as text (the CRM's as landed, Concord's as it sends it)
compared as (

    select
        sync.hubspot_company_id,
        {%- for property in properties %}
        {%- if property in landed %}
        nullif(trim(cast(crm.{{ property }} as {{ dbt.type_string() }})), '') as crm_{{ property }},
        {%- else %}
        cast(null as {{ dbt.type_string() }}) as crm_{{ property }},
        {%- endif %}
        cast(sync.{{ property }} as {{ dbt.type_string() }}) as concord_{{ property }},
        {%- endfor %}
        sync.ar_balance,
        sync.billing_currency
    from sync
    left join crm
        on sync.hubspot_company_id = cast(crm.id as {{ dbt.type_string() }})

),

differences as (

    {%- for property in properties %}
    {%- set crm = 'crm_' ~ property %}
    {%- set concord = 'concord_' ~ property %}
    {%- if properties[property] == 'amount' %}
        {%- set differs = 'abs(cast(' ~ crm ~ ' as decimal(38, 10)) - cast(' ~ concord ~ ' as decimal(38, 10))) > ' ~ var('amount_tolerance') %}
    {%- elif properties[property] == 'count' %}
        {%- set differs = 'cast(cast(' ~ crm ~ ' as decimal(38, 10)) as decimal(38, 0)) <> cast(' ~ concord ~ ' as decimal(38, 0))' %}
    {%- elif properties[property] == 'date' %}
        {%- set differs = 'cast(' ~ crm ~ ' as date) <> cast(' ~ concord ~ ' as date)' %}
    {%- else %}
        {%- set differs = crm ~ ' <> ' ~ concord %}
    {%- endif %}

    select
        hubspot_company_id,
        {{ loop.index }} as property_position,
        '{{ property }}' as property_name,
        {{ crm }} as crm_value,
        {{ concord }} as concord_value
    from compared
    where ({{ crm }} is null) <> ({{ concord }} is null)
       or ({{ crm }} is not null and {{ concord }} is not null and {{ differs }})
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

stale as (

    select
        hubspot_company_id,
        {{ concord.json_array_agg(
            concord.json_build_object({'property': 'property_name', 'crm': 'crm_value', 'concord': 'concord_value'}),
            'property_position') }} as differing_properties,
        count(*) as differing_count
    from differences
    group by hubspot_company_id

),

exceptions as (

    select
        'crm_financial_status_stale' as exception_type,
        'crm' as domain,
        'concord' as owner_system,
        customer_records.customer_id,
        'hubspot' as source_system,
        stale.hubspot_company_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as subject_qualifier,
        {{ concord.json_build_array([concord.record_ref('hubspot', 'company', 'stale.hubspot_company_id')]) }}
            as related_record_ids,
        compared.ar_balance as amount_at_risk,
        compared.billing_currency as currency,
        {{ concord.json_build_object({
            'differing_properties': 'stale.differing_properties',
            'differing_count': 'stale.differing_count',
        }) }} as details
    from stale
    inner join compared
        on stale.hubspot_company_id = compared.hubspot_company_id
    left join customer_records
        on stale.hubspot_company_id = customer_records.record_id

)

{{ concord.reconciliation_exception_columns('exceptions') }}
