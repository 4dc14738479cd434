-- One row per ERP sale order (the contract), linked to the HubSpot deal whose id it carries in
-- `client_order_ref` and to the Harvest project whose code is its name. Amounts in the
-- document currency, in the legal entity's functional currency and in the reporting currency,
-- converted at the order date.
with

sale_orders as (

    select * from {{ ref('stg_erp__sale_orders') }}

),

erp_partners as (

    select * from {{ ref('stg_erp__partners') }}

),

erp_companies as (

    select * from {{ ref('stg_erp__companies') }}

),

erp_currencies as (

    select * from {{ ref('stg_erp__currencies') }}

),

customer_records as (

    select * from {{ ref('int_customer_records') }}

),

deals as (

    select * from {{ ref('stg_hubspot__deals') }}

),

projects as (

    select * from {{ ref('stg_harvest__projects') }}

),

contract_project as (

    select project_code, project_id, projects
    from (
        select
            project_code,
            project_id,
            count(*) over (partition by project_code) as projects,
            row_number() over (partition by project_code order by created_at, project_id) as preference
        from projects
        where project_code is not null
    ) as ranked
    where preference = 1

),

enriched as (

    select
        sale_orders.*,
        coalesce(erp_partners.commercial_partner_id, sale_orders.partner_id) as customer_partner_id,
        document_currency.currency_code,
        functional_currency.currency_code as functional_currency_code,
        erp_companies.company_name as legal_entity_name,
        cast(sale_orders.ordered_at as date) as order_date
    from sale_orders
    left join erp_partners
        on sale_orders.partner_id = erp_partners.partner_id
    left join erp_currencies as document_currency
        on sale_orders.currency_id = document_currency.currency_id
    left join erp_companies
        on sale_orders.company_id = erp_companies.company_id
    left join erp_currencies as functional_currency
        on erp_companies.currency_id = functional_currency.currency_id

),

joined as (

    select
        -- ids
        enriched.sale_order_id,
        enriched.sale_order_name,
        enriched.client_order_ref as deal_id,
        customer_records.customer_id,
        enriched.customer_partner_id as erp_partner_id,
        enriched.partner_invoice_id as erp_invoice_partner_id,
        enriched.company_id as legal_entity_id,
        contract_project.project_id,

        -- strings
        enriched.legal_entity_name,
        enriched.state,
        enriched.invoice_status,
        deals.engagement_type,
        enriched.currency_code,
        enriched.functional_currency_code,

        -- numerics
        enriched.amount_untaxed,
        enriched.amount_tax,
        enriched.amount_total,
        {{ concord.convert_currency('enriched.amount_total', 'enriched.currency_code', 'enriched.functional_currency_code', 'enriched.order_date') }} as amount_total_functional,
        {{ concord.to_reporting_currency('enriched.amount_total', 'enriched.currency_code', 'enriched.order_date') }} as amount_total_reporting,
        coalesce(contract_project.projects, 0) as project_count,

        -- booleans
        enriched.state in ('sale', 'done') as is_confirmed,
        enriched.state = 'cancel' as is_cancelled,
        enriched.is_locked,
        deals.deal_id is not null as has_deal,
        contract_project.project_id is not null as has_project,

        -- dates
        enriched.order_date,
        enriched.validity_date,

        -- timestamps
        enriched.ordered_at,
        enriched.commitment_at,
        enriched.created_at,
        enriched.updated_at

    from enriched
    left join customer_records
        on customer_records.record_key = 'erp:' || cast(enriched.customer_partner_id as {{ dbt.type_string() }})
    left join deals
        on enriched.client_order_ref = deals.deal_id
    left join contract_project
        on enriched.sale_order_name = contract_project.project_code

)

select * from joined
