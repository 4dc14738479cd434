with

source as (

    select * from {{ source('erp', 'res_country') }}

),

renamed as (

    select
        -- ids
        id as country_id,
        currency_id,

        -- strings
        upper(code) as country_code,
        name as country_name,

        -- timestamps
        cast(create_date as timestamp) as created_at,
        cast(write_date as timestamp) as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
