-- Which payment is reconciled with which invoice (Odoo's many2many link table).
with

source as (

    select * from {{ source_or_empty('erp', 'account_move__account_payment') }}

),

renamed as (

    select
        -- ids
        {{ concord.surrogate_key(['invoice_id', 'payment_id']) }} as invoice_payment_id,
        invoice_id as move_id,
        payment_id,

        -- timestamps
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
