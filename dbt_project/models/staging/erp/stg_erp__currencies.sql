with

source as (

    select * from {{ source('erp', 'res_currency') }}

),

renamed as (

    select
        -- ids
        id as currency_id,

        -- strings
        upper(name) as currency_code,
        full_name as currency_name,
        symbol,

        -- numerics
        rounding,
        decimal_places,

        -- booleans
        coalesce(active, true) as is_active,

        -- timestamps
        cast(create_date as timestamp) as created_at,
        cast(write_date as timestamp) as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
