-- One row per customer (a real client), with its record in each system and the master data of
-- The ownership rules (DECISIONLOG.md, "Who owns which customer field") applied field by field:
--   HubSpot (the CRM) owns identity, name, domain and owner;
--   the ERP owns the legal name, VAT / tax id, country, customer ref and legal entity;
--   Stripe owns how the customer is billed (billing currency and e-mail).
-- Values other systems hold for an owned field are kept beside it (`hubspot_vat_number`,
-- `stripe_country_code`, `stripe_email_domain`) for the reconciliation to compare.
with

customers as (

    select * from {{ ref('int_customers') }}

),

customer_records as (

    select * from {{ ref('int_customer_records') }}

),

hubspot_companies as (

    select * from {{ ref('stg_hubspot__companies') }}

),

erp_partners as (

    select * from {{ ref('stg_erp__partners') }}

),

erp_countries as (

    select * from {{ ref('stg_erp__countries') }}

),

erp_companies as (

    select * from {{ ref('stg_erp__companies') }}

),

erp_currencies as (

    select * from {{ ref('stg_erp__currencies') }}

),

sale_orders as (

    select * from {{ ref('stg_erp__sale_orders') }}

),

stripe_customers as (

    select * from {{ ref('int_stripe_customers') }}

),

harvest_clients as (

    select * from {{ ref('stg_harvest__clients') }}

),

-- the currency of the customer's latest contract, for customers Stripe does not bill yet
latest_contract_currency as (

    select
        partner_id,
        currency_code
    from (
        select
            coalesce(erp_partners.commercial_partner_id, sale_orders.partner_id) as partner_id,
            erp_currencies.currency_code,
            row_number() over (
                partition by coalesce(erp_partners.commercial_partner_id, sale_orders.partner_id)
                order by sale_orders.ordered_at desc, sale_orders.sale_order_id desc
            ) as recency
        from sale_orders
        left join erp_partners
            on sale_orders.partner_id = erp_partners.partner_id
        inner join erp_currencies
            on sale_orders.currency_id = erp_currencies.currency_id
        where sale_orders.state <> 'cancel'
    ) as ranked
    where recency = 1

),

joined as (

    select
        -- ids
        customers.customer_id,
        customers.hubspot_company_id,
        cast(customers.erp_partner_id as bigint) as erp_partner_id,
        erp_partners.customer_ref as erp_customer_ref,
        customers.stripe_customer_id,
        cast(customers.harvest_client_id as bigint) as harvest_client_id,
        hubspot_companies.owner_id,
        erp_partners.company_id as legal_entity_id,

        -- owned by HubSpot
        hubspot_companies.company_name as customer_name,
        coalesce(hubspot_companies.domain, hubspot_records.domain) as domain,
        hubspot_companies.additional_domains as hubspot_additional_domains,
        hubspot_companies.lifecycle_stage,
        hubspot_companies.industry,
        hubspot_companies.country as hubspot_country,
        hubspot_companies.erp_customer_ref as hubspot_erp_customer_ref,
        hubspot_companies.vat_number as hubspot_vat_number,

        -- owned by the ERP
        erp_partners.partner_name as legal_name,
        erp_partners.vat as vat_number,
        erp_countries.country_code,
        erp_countries.country_name,
        erp_companies.company_name as legal_entity_name,
        functional_currency.currency_code as functional_currency_code,

        -- owned by Stripe
        coalesce(
            stripe_customers.currency_code,
            latest_contract_currency.currency_code,
            functional_currency.currency_code
        ) as billing_currency_code,
        case
            when stripe_customers.currency_code is not null then 'stripe_customer'
            when latest_contract_currency.currency_code is not null then 'erp_contract'
            when functional_currency.currency_code is not null then 'erp_legal_entity'
        end as billing_currency_source,
        stripe_customers.customer_name as stripe_customer_name,
        stripe_customers.email as billing_email,
        stripe_records.domain as stripe_email_domain,
        stripe_customers.address_country_code as stripe_country_code,

        -- Harvest
        harvest_clients.client_name as harvest_client_name,

        -- numerics
        customers.hubspot_records,
        customers.erp_records,
        customers.stripe_records,
        customers.harvest_records,
        customers.weakest_match_confidence,

        -- booleans
        customers.erp_records > 0 as has_erp_customer,
        customers.stripe_records > 0 as has_stripe_customer,
        customers.harvest_records > 0 as has_harvest_client,
        customers.has_duplicates,
        hubspot_companies.is_archived,

        -- timestamps
        hubspot_companies.created_at,
        erp_partners.created_at as erp_created_at,
        stripe_customers.created_at as stripe_created_at,
        harvest_clients.created_at as harvest_created_at

    from customers
    inner join hubspot_companies
        on customers.hubspot_company_id = hubspot_companies.company_id
    left join customer_records as hubspot_records
        on hubspot_records.record_key = 'hubspot:' || customers.hubspot_company_id
    left join erp_partners
        on customers.erp_partner_id = cast(erp_partners.partner_id as {{ dbt.type_string() }})
    left join erp_countries
        on erp_partners.country_id = erp_countries.country_id
    left join erp_companies
        on erp_partners.company_id = erp_companies.company_id
    left join erp_currencies as functional_currency
        on erp_companies.currency_id = functional_currency.currency_id
    left join latest_contract_currency
        on erp_partners.partner_id = latest_contract_currency.partner_id
    left join stripe_customers
        on customers.stripe_customer_id = stripe_customers.customer_id
    left join customer_records as stripe_records
        on stripe_records.record_key = 'stripe:' || customers.stripe_customer_id
    left join harvest_clients
        on customers.harvest_client_id = cast(harvest_clients.client_id as {{ dbt.type_string() }})

)

select * from joined
