-- One row per HubSpot deal: what the CRM says was sold (the CRM owns deals, stage, sold amount
-- and close date), with the customer, the ERP contract that carries the deal id in
-- `client_order_ref`, and the Harvest project whose code is that contract's name.
with

deals as (

    select * from {{ ref('stg_hubspot__deals') }}

),

deal_companies as (

    select * from {{ ref('stg_hubspot__deal_companies') }}

),

customer_records as (

    select * from {{ ref('int_customer_records') }}

),

sale_orders as (

    select * from {{ ref('stg_erp__sale_orders') }}

),

projects as (

    select * from {{ ref('stg_harvest__projects') }}

),

-- the company a deal is for: its primary association (else its first)
deal_company as (

    select deal_id, company_id
    from (
        select
            deal_id,
            company_id,
            row_number() over (
                partition by deal_id
                order by case when is_primary then 0 else 1 end, association_position, company_id
            ) as preference
        from deal_companies
        where deal_id is not null
    ) as ranked
    where preference = 1

),

-- the contract of a deal: the live sale order carrying its id (the latest, should there be several)
deal_contract as (

    select
        client_order_ref as deal_id,
        sale_order_id,
        sale_order_name,
        contracts
    from (
        select
            client_order_ref,
            sale_order_id,
            sale_order_name,
            count(*) over (partition by client_order_ref) as contracts,
            row_number() over (
                partition by client_order_ref
                order by case when state = 'cancel' then 1 else 0 end, created_at desc, sale_order_id desc
            ) as preference
        from sale_orders
        where client_order_ref is not null
    ) as ranked
    where preference = 1

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

joined as (

    select
        -- ids
        deals.deal_id,
        customer_records.customer_id,
        deal_company.company_id as hubspot_company_id,
        deals.owner_id,
        deal_contract.sale_order_id,
        deal_contract.sale_order_name,
        contract_project.project_id,

        -- strings
        deals.deal_name,
        deals.pipeline,
        deals.deal_stage,
        deals.deal_type,
        deals.engagement_type,
        deals.currency_code,

        -- numerics
        deals.amount,
        {{ concord.to_reporting_currency('deals.amount', 'deals.currency_code', 'coalesce(deals.close_date, cast(deals.created_at as date))') }} as amount_reporting,
        coalesce(deal_contract.contracts, 0) as contract_count,
        coalesce(contract_project.projects, 0) as project_count,

        -- booleans
        deals.is_closed,
        deals.is_closed_won,
        deals.is_closed and not deals.is_closed_won as is_closed_lost,
        deals.is_archived,
        deal_contract.sale_order_id is not null as has_contract,
        contract_project.project_id is not null as has_project,

        -- dates
        deals.close_date,

        -- timestamps
        deals.close_at,
        deals.created_at,
        deals.updated_at,
        deals.archived_at

    from deals
    left join deal_company
        on deals.deal_id = deal_company.deal_id
    left join customer_records
        on customer_records.record_key = 'hubspot:' || deal_company.company_id
    left join deal_contract
        on deals.deal_id = deal_contract.deal_id
    left join contract_project
        on deal_contract.sale_order_name = contract_project.project_code

)

select * from joined
