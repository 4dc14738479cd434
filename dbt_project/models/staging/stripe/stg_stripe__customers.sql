with

source as (

    select * from {{ source('stripe', 'customers') }}

),

renamed as (

    select
        -- ids
        id as customer_id,
        nullif(trim({{ concord.json_extract_text('metadata', 'erp_customer_ref') }}), '') as erp_customer_ref,
        nullif(trim({{ concord.json_extract_text('metadata', 'hubspot_company_id') }}), '') as hubspot_company_id,

        -- strings
        nullif(trim(name), '') as customer_name,
        lower(nullif(trim(email), '')) as email,
        nullif(trim(phone), '') as phone,
        description,
        upper(nullif(trim(currency), '')) as currency_code,
        invoice_prefix,
        tax_exempt,
        address__line1 as address_line1,
        address__line2 as address_line2,
        address__city as address_city,
        address__postal_code as address_postal_code,
        address__state as address_state,
        upper(nullif(trim(address__country), '')) as address_country_code,

        -- numerics
        {{ concord.minor_to_major('balance', 'currency') }} as balance,
        next_invoice_sequence,

        -- booleans
        coalesce(delinquent, false) as is_delinquent,
        coalesce(deleted, false) as is_deleted,
        coalesce(livemode, false) as is_livemode,

        -- timestamps
        {{ concord.epoch_to_timestamp('created') }} as created_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
