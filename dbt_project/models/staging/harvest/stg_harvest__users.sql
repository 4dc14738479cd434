with

source as (

    select * from {{ source('harvest', 'users') }}

),

renamed as (

    select
        -- ids
        id as user_id,

        -- strings
        first_name,
        last_name,
        trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) as full_name,
        lower(email) as email,
        nullif(trim(telephone), '') as telephone,
        timezone,
        cast(roles as {{ dbt.type_string() }}) as roles,
        cast(access_roles as {{ dbt.type_string() }}) as access_roles,
        avatar_url,

        -- numerics
        cast(weekly_capacity / 3600.0 as decimal(10, 2)) as weekly_capacity_hours,
        cast(default_hourly_rate as decimal(18, 2)) as default_hourly_rate,
        cast(cost_rate as decimal(18, 2)) as cost_rate,

        -- booleans
        coalesce(is_active, false) as is_active,
        coalesce(is_contractor, false) as is_contractor,
        coalesce(has_access_to_all_future_projects, false) as has_access_to_all_future_projects,

        -- timestamps
        {{ concord.to_utc_timestamp('created_at') }} as created_at,
        {{ concord.to_utc_timestamp('updated_at') }} as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
