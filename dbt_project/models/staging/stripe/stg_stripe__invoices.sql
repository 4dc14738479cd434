with

source as (

    select * from {{ source('stripe', 'invoices') }}

),

renamed as (

    select
        -- ids
        id as invoice_id,
        customer as customer_id,
        charge as charge_id,
        payment_intent as payment_intent_id,
        subscription as subscription_id,
        nullif(trim(number), '') as invoice_number,
        nullif(trim({{ concord.json_extract_text('metadata', 'project_code') }}), '') as project_code,

        -- strings
        status,
        upper(currency) as currency_code,
        collection_method,
        billing_reason,
        description,
        customer_name,
        lower(customer_email) as customer_email,
        hosted_invoice_url,

        -- numerics (major units of currency_code)
        {{ concord.minor_to_major('subtotal', 'currency') }} as subtotal,
        {{ concord.minor_to_major('coalesce(tax, 0)', 'currency') }} as tax,
        {{ concord.minor_to_major('total', 'currency') }} as total,
        {{ concord.minor_to_major('amount_due', 'currency') }} as amount_due,
        {{ concord.minor_to_major('amount_paid', 'currency') }} as amount_paid,
        {{ concord.minor_to_major('amount_remaining', 'currency') }} as amount_remaining,
        {{ concord.minor_to_major('starting_balance', 'currency') }} as starting_balance,
        {{ concord.minor_to_major('ending_balance', 'currency') }} as ending_balance,
        {{ concord.minor_to_major('coalesce(pre_payment_credit_notes_amount, 0)', 'currency') }} as pre_payment_credit_notes_amount,
        {{ concord.minor_to_major('coalesce(post_payment_credit_notes_amount, 0)', 'currency') }} as post_payment_credit_notes_amount,

        -- booleans
        coalesce(paid, false) as is_paid,
        coalesce(paid_out_of_band, false) as is_paid_out_of_band,
        coalesce(livemode, false) as is_livemode,

        -- dates
        cast({{ concord.epoch_to_timestamp('due_date') }} as date) as due_date,

        -- timestamps
        {{ concord.epoch_to_timestamp('created') }} as created_at,
        {{ concord.epoch_to_timestamp('effective_at') }} as effective_at,
        {{ concord.epoch_to_timestamp('due_date') }} as due_at,
        {{ concord.epoch_to_timestamp('period_start') }} as period_start_at,
        {{ concord.epoch_to_timestamp('period_end') }} as period_end_at,
        {{ concord.epoch_to_timestamp('status_transitions__finalized_at') }} as finalized_at,
        {{ concord.epoch_to_timestamp('status_transitions__paid_at') }} as paid_at,
        {{ concord.epoch_to_timestamp('status_transitions__voided_at') }} as voided_at,
        {{ concord.epoch_to_timestamp('status_transitions__marked_uncollectible_at') }} as marked_uncollectible_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
