with

source as (

    select * from {{ source('harvest', 'time_entries') }}

),

renamed as (

    select
        -- ids
        id as time_entry_id,
        user__id as user_id,
        client__id as client_id,
        project__id as project_id,
        task__id as task_id,
        user_assignment__id as user_assignment_id,
        task_assignment__id as task_assignment_id,
        nullif(trim(project__code), '') as project_code,
        external_reference,

        -- strings
        user__name as user_name,
        client__name as client_name,
        project__name as project_name,
        task__name as task_name,
        upper(client__currency) as currency_code,
        notes,
        locked_reason,

        -- numerics
        cast(hours as decimal(18, 4)) as hours,
        cast(rounded_hours as decimal(18, 4)) as rounded_hours,
        cast(billable_rate as decimal(18, 2)) as billable_rate,
        cast(cost_rate as decimal(18, 2)) as cost_rate,

        -- booleans
        coalesce(billable, false) as is_billable,
        coalesce(budgeted, false) as is_budgeted,
        coalesce(is_closed, false) as is_closed,
        coalesce(is_locked, false) as is_locked,
        coalesce(is_billed, false) as is_billed,
        coalesce(is_running, false) as is_running,
        coalesce(task_assignment__billable, false) as is_task_billable,

        -- dates
        cast(spent_date as date) as spent_date,

        -- timestamps
        {{ concord.to_utc_timestamp('created_at') }} as created_at,
        {{ concord.to_utc_timestamp('updated_at') }} as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
