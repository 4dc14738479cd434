-- Every system record that may stand for a client, in one shape: the input of identity
-- resolution (`int_customer_records`). `record_key` is `<system>:<id in that system>`.
--
-- HubSpot companies (archived ones too: the CRM owns account identity), ERP customer masters
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

    select * from {{ ref('stg_stripe__customers') }}

),

harvest_clients as (

    select * from {{ ref('stg_harvest__clients') }}

),

hubspot as (

    select
        'hubspot:' || company_id as record_key,
        'hubspot' as system,
        company_id as record_id,
        company_name as record_name,
        vat_number as vat,
        coalesce(domain, website) as domain_source,
        is_archived,
        created_at
    from hubspot_companies

),

erp as (

    select
        'erp:' || cast(partner_id as {{ dbt.type_string() }}) as record_key,
        'erp' as system,
        cast(partner_id as {{ dbt.type_string() }}) as record_id,
        partner_name as record_name,
        vat,
        coalesce(website, email) as domain_source,
        not is_active as is_archived,
        created_at
    from erp_partners
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
        email as domain_source,
        false as is_archived,
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
        cast(null as {{ dbt.type_string() }}) as domain_source,
        not is_active as is_archived,
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
