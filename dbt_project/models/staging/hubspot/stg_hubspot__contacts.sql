with

source as (

    select * from {{ source('hubspot', 'contacts') }}

),

renamed as (

    select
        -- ids
        cast(id as {{ dbt.type_string() }}) as contact_id,
        nullif(trim(hubspot_owner_id), '') as owner_id,

        -- strings
        nullif(trim(firstname), '') as first_name,
        nullif(trim(lastname), '') as last_name,
        lower(nullif(trim(email), '')) as email,
        nullif(trim(jobtitle), '') as job_title,
        nullif(trim(company), '') as company_name,
        nullif(trim(phone), '') as phone,
        nullif(trim(lifecyclestage), '') as lifecycle_stage,

        -- booleans
        coalesce(archived, false) as is_archived,

        -- timestamps
        {{ concord.to_utc_timestamp('created_at') }} as created_at,
        {{ concord.to_utc_timestamp('updated_at') }} as updated_at,
        {{ concord.to_utc_timestamp('archived_at') }} as archived_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
