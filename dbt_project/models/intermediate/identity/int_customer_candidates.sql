-- Every system record that may stand for a client, in one shape: the input of identity
-- resolution (`int_customer_records`). `record_key` is `<system>:<id in that system>`.
--
-- HubSpot companies (archived ones too: the CRM owns account identity; not those merged into
-- another), ERP customer masters
-- (companies with customer_rank > 0, not the firm's own legal entities, not the catch-all
-- partner for unidentified card sales), Stripe customers, Harvest clients.
with

hubspot_companies as (

    select * from {{ ref('stg_hubspot__companies') }}

),

erp_partners as (

    select * from {{ ref('stg_erp__partners') }}

),

erp_companies as (

    select * from {{ ref('stg_erp__companies') }}

),

stripe_customers as (

    select * from {{ ref('int_stripe_customers') }}

),

harvest_clients as (

    select * from {{ ref('stg_harvest__clients') }}

),

erp_countries as (

    select * from {{ ref('stg_erp__countries') }}

),

hubspot as (

    select
        'hubspot:' || company_id as record_key,
        'hubspot' as system,
        company_id as record_id,
        company_name as record_name,
        vat_number as vat,
        -- HubSpot keeps the country's name (or its code)
        coalesce(erp_countries.country_code,
                 case when length(hubspot_companies.country) = 2 then upper(hubspot_companies.country) end)
            as country_code,
        coalesce(domain, website) as domain_source,
        additional_domains,
        is_archived,
        false as is_deleted,
        hubspot_companies.created_at
    from hubspot_companies
    left join erp_countries
        on lower(hubspot_companies.country) = lower(erp_countries.country_name)
    -- a company merged into another no longer exists: the survivor stands for the client
    where not coalesce(hubspot_companies.is_merged_away, false)

),

erp as (

    select
        'erp:' || cast(partner_id as {{ dbt.type_string() }}) as record_key,
        'erp' as system,
        cast(partner_id as {{ dbt.type_string() }}) as record_id,
        partner_name as record_name,
        vat,
        erp_countries.country_code,
        coalesce(website, email) as domain_source,
        cast(null as {{ dbt.type_string() }}) as additional_domains,
        not is_active as is_archived,
        false as is_deleted,
        erp_partners.created_at
    from erp_partners
    left join erp_countries
        on erp_partners.country_id = erp_countries.country_id
    where is_customer_master
      and parent_id is null
      and partner_id not in (select partner_id from erp_companies where partner_id is not null)
      and coalesce(customer_ref, '') not in (
          {%- for ref in var('erp_catch_all_partner_refs', ['MISC']) %}'{{ ref }}'{{ ', ' if not loop.last }}{% endfor -%}
      )

),

stripe as (

    select
        'stripe:' || customer_id as record_key,
        'stripe' as system,
        customer_id as record_id,
        customer_name as record_name,
        cast(null as {{ dbt.type_string() }}) as vat,
        address_country_code as country_code,
        email as domain_source,
        cast(null as {{ dbt.type_string() }}) as additional_domains,
        false as is_archived,
        is_deleted,
        created_at
    from stripe_customers

),

harvest as (

    select
        'harvest:' || cast(client_id as {{ dbt.type_string() }}) as record_key,
        'harvest' as system,
        cast(client_id as {{ dbt.type_string() }}) as record_id,
        client_name as record_name,
        cast(null as {{ dbt.type_string() }}) as vat,
        cast(null as {{ dbt.type_string() }}) as country_code,
        cast(null as {{ dbt.type_string() }}) as domain_source,
        cast(null as {{ dbt.type_string() }}) as additional_domains,
        not is_active as is_archived,
        false as is_deleted,
        created_at
    from harvest_clients

),

unioned as (

    select * from hubspot
    union all
    select * from erp
    union all
    select * from stripe
    union all
    select * from harvest

)

select * from unioned
