with

source as (

    select * from {{ source('erp', 'res_partner') }}

),

renamed as (

    select
        -- ids
        id as partner_id,
        parent_id,
        commercial_partner_id,
        company_id,
        country_id,
        nullif(trim(ref), '') as customer_ref,

        -- strings
        nullif(trim(name), '') as partner_name,
        complete_name,
        commercial_company_name,
        nullif(trim(vat), '') as vat,
        lower(nullif(trim(email), '')) as email,
        nullif(trim(phone), '') as phone,
        nullif(trim(website), '') as website,
        street,
        street2,
        zip,
        city,
        lang,
        type as partner_type,

        -- numerics
        coalesce(customer_rank, 0) as customer_rank,
        coalesce(supplier_rank, 0) as supplier_rank,

        -- booleans
        coalesce(is_company, false) as is_company,
        coalesce(active, true) as is_active,
        coalesce(is_company, false) and coalesce(customer_rank, 0) > 0 as is_customer_master,

        -- timestamps
        cast(create_date as timestamp) as created_at,
        cast(write_date as timestamp) as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
