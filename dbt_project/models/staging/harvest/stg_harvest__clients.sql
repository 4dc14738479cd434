with

source as (

    select * from {{ source('harvest', 'clients') }}

),

renamed as (

    select
        -- ids
        id as client_id,

        -- strings
        nullif(trim(name), '') as client_name,
        address,
        statement_key,
        upper(currency) as currency_code,

        -- booleans
        coalesce(is_active, false) as is_active,

        -- timestamps
        {{ concord.to_utc_timestamp('created_at') }} as created_at,
        {{ concord.to_utc_timestamp('updated_at') }} as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
