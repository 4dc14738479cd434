with

source as (

    select * from {{ source('hubspot', 'deals') }}

),

renamed as (

    select
        -- ids
        cast(id as {{ dbt.type_string() }}) as deal_id,
        nullif(trim(hubspot_owner_id), '') as owner_id,

        -- strings
        nullif(trim(dealname), '') as deal_name,
        nullif(trim(pipeline), '') as pipeline,
        nullif(trim(dealstage), '') as deal_stage,
        nullif(trim(dealtype), '') as deal_type,
        nullif(trim(engagement_type), '') as engagement_type,
        upper(nullif(trim(deal_currency_code), '')) as currency_code,
        description,

        -- numerics
        cast(nullif(trim(amount), '') as decimal(18, 2)) as amount,

        -- booleans
        coalesce(cast(nullif(trim(hs_is_closed), '') as boolean), false) as is_closed,
        coalesce(cast(nullif(trim(hs_is_closed_won), '') as boolean), false) as is_closed_won,
        coalesce(archived, false) as is_archived,

        -- timestamps
        {{ concord.iso_to_utc_timestamp('closedate') }} as close_at,
        cast({{ concord.iso_to_utc_timestamp('closedate') }} as date) as close_date,
        {{ concord.to_utc_timestamp('created_at') }} as created_at,
        {{ concord.to_utc_timestamp('updated_at') }} as updated_at,
        {{ concord.to_utc_timestamp('archived_at') }} as archived_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
