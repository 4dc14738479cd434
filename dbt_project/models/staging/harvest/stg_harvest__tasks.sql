with

source as (

    select * from {{ source('harvest', 'tasks') }}

),

renamed as (

    select
        -- ids
        id as task_id,

        -- strings
        name as task_name,

        -- numerics
        cast(default_hourly_rate as decimal(18, 2)) as default_hourly_rate,

        -- booleans
        coalesce(billable_by_default, false) as is_billable_by_default,
        coalesce(is_default, false) as is_default,
        coalesce(is_active, false) as is_active,

        -- timestamps
        {{ concord.to_utc_timestamp('created_at') }} as created_at,
        {{ concord.to_utc_timestamp('updated_at') }} as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
