with

source as (

    select * from {{ source_or_empty('stripe', 'credit_notes') }}

),

renamed as (

    select
        -- ids
        id as credit_note_id,
        invoice as invoice_id,
        customer as customer_id,
        refund as refund_id,
        number as credit_note_number,

        -- strings
        type as credit_note_type,
        status,
        reason,
        memo,
        upper(currency) as currency_code,

        -- numerics
        {{ concord.minor_to_major('amount', 'currency') }} as amount,
        {{ concord.minor_to_major('subtotal', 'currency') }} as subtotal,
        {{ concord.minor_to_major('total', 'currency') }} as total,
        {{ concord.minor_to_major('coalesce(discount_amount, 0)', 'currency') }} as discount_amount,
        {{ concord.minor_to_major('out_of_band_amount', 'currency') }} as out_of_band_amount,

        -- booleans
        coalesce(livemode, false) as is_livemode,

        -- timestamps
        {{ concord.epoch_to_timestamp('created') }} as created_at,
        {{ concord.epoch_to_timestamp('effective_at') }} as effective_at,
        {{ concord.epoch_to_timestamp('voided_at') }} as voided_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
