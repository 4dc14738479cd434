-- One row per Harvest user: the people whose time is sold.
with

users as (

    select * from {{ ref('stg_harvest__users') }}

)

select
    -- ids
    user_id,

    -- strings
    full_name,
    first_name,
    last_name,
    email,
    timezone,
    roles,

    -- numerics
    weekly_capacity_hours,
    default_hourly_rate,
    cost_rate,

    -- booleans
    is_active,
    is_contractor,

    -- timestamps
    created_at,
    updated_at

from users
