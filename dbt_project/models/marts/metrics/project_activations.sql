-- Project activation: one row per live closed-won HubSpot deal, from its close to the creation
-- of its Harvest project (the first project whose code is the name of the deal's ERP contract).
-- `activation_days` is the elapsed time in days (to the hour, never negative: a project set up
-- before the deal closed was active at close). A deal is within the SLA when its project came
-- within `activation_sla_days` (14) of the close; it breaches the SLA when it came later or, still
-- awaiting one, the close is more than that long before the as-of moment. The legal entity is the
-- contract's, else the customer's.
with

deals as (

    select * from {{ ref('engagements') }}
    where is_closed_won
      and not is_archived
      and close_at is not null

),

projects as (

    select project_id, created_at from {{ ref('projects') }}

),

contracts as (

    select sale_order_id, legal_entity_id from {{ ref('contracts') }}

),

customers as (

    select customer_id, legal_entity_id from {{ ref('customers') }}

),

joined as (

    select
        deals.deal_id,
        deals.customer_id,
        coalesce(contracts.legal_entity_id, customers.legal_entity_id) as legal_entity_id,
        deals.sale_order_id,
        deals.project_id,
        deals.engagement_type,
        deals.close_at,
        projects.created_at as project_created_at
    from deals
    left join projects
        on deals.project_id = projects.project_id
    left join contracts
        on deals.sale_order_id = contracts.sale_order_id
    left join customers
        on deals.customer_id = customers.customer_id

),

measured as (

    select
        joined.*,
        case
            when project_created_at is not null
                then greatest({{ dbt.datediff('close_at', 'project_created_at', 'hour') }}, 0) / 24.0
        end as activation_days,
        case
            when project_created_at is null
                then greatest({{ dbt.datediff('close_at', as_of(), 'hour') }}, 0) / 24.0
        end as awaiting_days
    from joined

)

select
    -- ids
    deal_id,
    customer_id,
    legal_entity_id,
    sale_order_id,
    project_id,

    -- strings
    engagement_type,

    -- numerics
    cast(activation_days as decimal(10, 2)) as activation_days,
    cast(awaiting_days as decimal(10, 2)) as awaiting_days,

    -- booleans
    project_created_at is not null as is_activated,
    coalesce(activation_days <= {{ var('activation_sla_days') }}, false) as is_within_sla,
    coalesce(activation_days, awaiting_days) > {{ var('activation_sla_days') }} as is_sla_breached,

    -- dates
    cast({{ dbt.date_trunc('month', 'close_at') }} as date) as close_month,

    -- timestamps
    close_at,
    project_created_at

from measured
