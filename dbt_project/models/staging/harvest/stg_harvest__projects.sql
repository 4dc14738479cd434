with

source as (

    select * from {{ source('harvest', 'projects') }}

),

renamed as (

    select
        -- ids
        id as project_id,
        client__id as client_id,
        nullif(trim(code), '') as project_code,

        -- strings
        name as project_name,
        client__name as client_name,
        upper(client__currency) as currency_code,
        bill_by,
        budget_by,
        notes,

        -- numerics
        cast(hourly_rate as decimal(18, 2)) as hourly_rate,
        cast(budget as decimal(18, 2)) as budget,
        cast(cost_budget as decimal(18, 2)) as cost_budget,
        cast(fee as decimal(18, 2)) as fee,
        over_budget_notification_percentage,

        -- booleans
        coalesce(is_active, false) as is_active,
        coalesce(is_billable, false) as is_billable,
        coalesce(is_fixed_fee, false) as is_fixed_fee,
        coalesce(budget_is_monthly, false) as is_budget_monthly,
        coalesce(notify_when_over_budget, false) as notify_when_over_budget,
        coalesce(show_budget_to_all, false) as show_budget_to_all,
        coalesce(cost_budget_include_expenses, false) as cost_budget_include_expenses,

        -- dates
        cast(starts_on as date) as starts_on,
        cast(ends_on as date) as ends_on,
        cast(over_budget_notification_date as date) as over_budget_notification_date,

        -- timestamps
        {{ concord.to_utc_timestamp('created_at') }} as created_at,
        {{ concord.to_utc_timestamp('updated_at') }} as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
