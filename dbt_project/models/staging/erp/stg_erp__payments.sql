with

source as (

    select * from {{ source('erp', 'account_payment') }}

),

renamed as (

    select
        -- ids
        id as payment_id,
        move_id,
        journal_id,
        company_id,
        partner_id,
        currency_id,
        nullif(trim(payment_reference), '') as payment_reference,

        -- strings
        name as payment_name,
        state,
        payment_type,
        partner_type,
        memo,

        -- numerics
        amount,
        amount_company_currency_signed,

        -- booleans
        coalesce(is_reconciled, false) as is_reconciled,
        coalesce(is_matched, false) as is_matched,

        -- dates
        date as payment_date,

        -- timestamps
        cast(create_date as timestamp) as created_at,
        cast(write_date as timestamp) as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
