with

source as (

    select * from {{ source('erp', 'account_journal') }}

),

renamed as (

    select
        -- ids
        id as journal_id,
        company_id,
        currency_id,

        -- strings
        name as journal_name,
        code as journal_code,
        type as journal_type,

        -- timestamps
        cast(create_date as timestamp) as created_at,
        cast(write_date as timestamp) as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
