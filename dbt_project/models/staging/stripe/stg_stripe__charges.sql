with

source as (

    select * from {{ source('stripe', 'charges') }}

),

renamed as (

    select
        -- ids
        id as charge_id,
        customer as customer_id,
        invoice as invoice_id,
        payment_intent as payment_intent_id,
        payment_method as payment_method_id,
        balance_transaction as balance_transaction_id,

        -- strings
        status,
        upper(currency) as currency_code,
        description,
        payment_method_details__type as payment_method_type,
        billing_details__name as billing_name,
        lower(billing_details__email) as billing_email,
        lower(receipt_email) as receipt_email,
        failure_code,
        failure_message,

        -- numerics
        {{ concord.minor_to_major('amount', 'currency') }} as amount,
        {{ concord.minor_to_major('amount_captured', 'currency') }} as amount_captured,
        {{ concord.minor_to_major('coalesce(amount_refunded, 0)', 'currency') }} as amount_refunded,

        -- booleans
        coalesce(paid, false) as is_paid,
        coalesce(captured, false) as is_captured,
        coalesce(refunded, false) as is_refunded,
        coalesce(disputed, false) as is_disputed,
        coalesce(livemode, false) as is_livemode,

        -- timestamps
        {{ concord.epoch_to_timestamp('created') }} as created_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
