-- One row per Harvest project (the PSA owns projects), linked to the ERP contract whose name is
-- the project code, and through it to the HubSpot deal.
with

projects as (

    select * from {{ ref('stg_harvest__projects') }}

),

sale_orders as (

    select * from {{ ref('stg_erp__sale_orders') }}

),

customer_records as (

    select * from {{ ref('int_customer_records') }}

),

joined as (

    select
        -- ids
        projects.project_id,
        projects.project_code,
        projects.client_id as harvest_client_id,
        customer_records.customer_id,
        sale_orders.sale_order_id,
        sale_orders.client_order_ref as deal_id,

        -- strings
        projects.project_name,
        projects.client_name as harvest_client_name,
        projects.bill_by,
        projects.budget_by,
        projects.currency_code,

        -- numerics
        projects.hourly_rate,
        projects.budget,
        projects.cost_budget,
        projects.fee,

        -- booleans
        projects.is_active,
        projects.is_billable,
        projects.is_fixed_fee,
        projects.is_budget_monthly,
        sale_orders.sale_order_id is not null as has_contract,

        -- dates
        projects.starts_on,
        projects.ends_on,

        -- timestamps
        projects.created_at,
        projects.updated_at

    from projects
    left join customer_records
        on customer_records.record_key = 'harvest:' || cast(projects.client_id as {{ dbt.type_string() }})
    left join sale_orders
        on projects.project_code = sale_orders.sale_order_name

)

select * from joined
