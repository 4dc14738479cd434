-- The terms that drive billing, one row per engagement (a HubSpot deal that is won or has an
-- ERP contract), side by side from the three systems that hold them: what was sold (HubSpot:
-- amount, currency, engagement type, close date), what was contracted (the ERP sale order:
-- amount, currency, state) and how the work is budgeted and billed (the Harvest project: bill
-- by, budget by, budget, hourly rate, fee). `snap_billing_terms` keeps every change of them, so
-- an amendment can be traced back in time.
with

deals as (

    select * from {{ ref('engagements') }}
    where is_closed_won
       or sale_order_id is not null

),

contracts as (

    select * from {{ ref('contracts') }}

),

projects as (

    select * from {{ ref('projects') }}

)

select
    -- ids
    deals.deal_id,
    deals.customer_id,
    deals.sale_order_id,
    contracts.sale_order_name,
    deals.project_id,
    contracts.legal_entity_id,

    -- sold (HubSpot)
    deals.deal_stage,
    deals.engagement_type,
    deals.currency_code as deal_currency_code,
    deals.amount as deal_amount,
    deals.close_date,
    deals.is_archived as is_deal_archived,

    -- contracted (ERP)
    contracts.state as contract_state,
    contracts.currency_code as contract_currency_code,
    contracts.amount_untaxed as contract_amount_untaxed,
    contracts.amount_total as contract_amount_total,
    contracts.validity_date as contract_validity_date,

    -- budgeted and billed (Harvest)
    projects.bill_by as project_bill_by,
    projects.budget_by as project_budget_by,
    projects.budget as project_budget,
    projects.cost_budget as project_cost_budget,
    projects.hourly_rate as project_hourly_rate,
    projects.fee as project_fee,
    projects.is_fixed_fee as project_is_fixed_fee,
    projects.is_billable as project_is_billable,
    projects.is_budget_monthly as project_is_budget_monthly,
    projects.is_active as project_is_active,
    projects.starts_on as project_starts_on,
    projects.ends_on as project_ends_on

from deals
left join contracts
    on deals.sale_order_id = contracts.sale_order_id
left join projects
    on deals.project_id = projects.project_id
