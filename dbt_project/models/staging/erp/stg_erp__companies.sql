with

source as (

    select * from {{ source('erp', 'res_company') }}

),

renamed as (

    select
        -- ids
        id as company_id,
        partner_id,
        currency_id,
        parent_id as parent_company_id,

        -- strings
        name as company_name,
        lower(email) as email,
        phone,

        -- numerics
        sequence,

        -- booleans
        coalesce(active, true) as is_active,

        -- timestamps
        cast(create_date as timestamp) as created_at,
        cast(write_date as timestamp) as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
