with

source as (

    select * from {{ source_or_empty('stripe', 'disputes') }}

),

renamed as (

    select
        -- ids
        id as dispute_id,
        charge as charge_id,
        payment_intent as payment_intent_id,

        -- strings
        status,
        reason,
        upper(currency) as currency_code,

        -- numerics
        {{ concord.minor_to_major('amount', 'currency') }} as amount,
        evidence_details__submission_count as evidence_submission_count,

        -- booleans
        status in ('warning_needs_response', 'warning_under_review', 'needs_response', 'under_review') as is_open,
        coalesce(is_charge_refundable, false) as is_charge_refundable,
        coalesce(evidence_details__has_evidence, false) as has_evidence,
        coalesce(livemode, false) as is_livemode,

        -- timestamps
        {{ concord.epoch_to_timestamp('created') }} as created_at,
        {{ concord.epoch_to_timestamp('evidence_details__due_by') }} as evidence_due_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
