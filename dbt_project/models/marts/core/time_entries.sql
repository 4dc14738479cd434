-- One row per Harvest time entry, with its billable value (hours x billable rate, for billable
-- time) in the client's currency and in the reporting currency, and its approval and invoicing
-- state: Harvest marks approved time `is_closed` and invoiced time `is_billed`.
with

time_entries as (

    select * from {{ ref('stg_harvest__time_entries') }}

),

projects as (

    select project_id, customer_id, sale_order_id, deal_id from {{ ref('projects') }}

),

valued as (

    select
        time_entries.*,
        projects.customer_id,
        projects.sale_order_id,
        projects.deal_id,
        case
            when time_entries.is_billable then cast(time_entries.hours * coalesce(time_entries.billable_rate, 0) as decimal(18, 2))
            else cast(0 as decimal(18, 2))
        end as billable_value,
        cast(time_entries.hours * coalesce(time_entries.cost_rate, 0) as decimal(18, 2)) as cost_value
    from time_entries
    left join projects
        on time_entries.project_id = projects.project_id

)

select
    -- ids
    time_entry_id,
    user_id,
    project_id,
    project_code,
    client_id as harvest_client_id,
    customer_id,
    sale_order_id,
    deal_id,
    task_id,

    -- strings
    task_name,
    user_name,
    currency_code,
    notes,
    locked_reason,

    -- numerics
    hours,
    rounded_hours,
    billable_rate,
    cost_rate,
    billable_value,
    cost_value,
    {{ concord.to_reporting_currency('billable_value', 'currency_code', 'spent_date') }} as billable_value_reporting,

    -- booleans
    is_billable,
    is_closed as is_approved,
    is_locked,
    is_billed,
    is_billable and is_closed and not is_billed as is_approved_unbilled,
    is_running,

    -- dates
    spent_date,
    cast({{ dbt.date_trunc('month', 'spent_date') }} as date) as spent_month,

    -- timestamps
    created_at,
    updated_at

from valued
