with

source as (

    select * from {{ source('erp', 'sale_order') }}

),

renamed as (

    select
        -- ids
        id as sale_order_id,
        company_id,
        partner_id,
        partner_invoice_id,
        currency_id,
        nullif(trim(client_order_ref), '') as client_order_ref,
        nullif(trim(origin), '') as origin,

        -- strings
        name as sale_order_name,
        state,
        invoice_status,
        note,

        -- numerics (document currency)
        currency_rate,
        amount_untaxed,
        amount_tax,
        amount_total,

        -- booleans
        coalesce(locked, false) as is_locked,

        -- dates
        validity_date,

        -- timestamps
        cast(date_order as timestamp) as ordered_at,
        cast(commitment_date as timestamp) as commitment_at,
        cast(create_date as timestamp) as created_at,
        cast(write_date as timestamp) as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
