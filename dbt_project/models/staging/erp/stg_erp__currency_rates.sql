with

source as (

    select * from {{ source('erp', 'res_currency_rate') }}

),

renamed as (

    select
        -- ids
        id as currency_rate_id,
        currency_id,
        company_id,

        -- numerics: units of the currency per one unit of the company's currency
        rate,

        -- dates
        cast(name as date) as rate_date,

        -- timestamps
        cast(create_date as timestamp) as created_at,
        cast(write_date as timestamp) as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
