with

source as (

    select * from {{ source('hubspot', 'companies') }}

),

renamed as (

    select
        -- ids
        cast(id as {{ dbt.type_string() }}) as company_id,
        nullif(trim(hubspot_owner_id), '') as owner_id,
        nullif(trim(erp_customer_ref), '') as erp_customer_ref,

        -- strings
        nullif(trim(name), '') as company_name,
        lower(nullif(trim(domain), '')) as domain,
        lower(nullif(trim({{ concord.column_or_null(source('hubspot', 'companies'), 'hs_additional_domains',
                                                    dbt.type_string()) }}), '')) as additional_domains,
        nullif(trim({{ concord.column_or_null(source('hubspot', 'companies'), 'hs_merged_object_ids',
                                              dbt.type_string()) }}), '') as merged_object_ids,
        nullif(trim(website), '') as website,
        nullif(trim(vat_number), '') as vat_number,
        nullif(trim(country), '') as country,
        nullif(trim(city), '') as city,
        nullif(trim(phone), '') as phone,
        nullif(trim(industry), '') as industry,
        nullif(trim(lifecyclestage), '') as lifecycle_stage,
        description,

        -- numerics
        cast(nullif(trim(numberofemployees), '') as integer) as number_of_employees,

        -- booleans
        coalesce(archived, false) as is_archived,

        -- timestamps
        {{ concord.to_utc_timestamp('created_at') }} as created_at,
        {{ concord.to_utc_timestamp('updated_at') }} as updated_at,
        {{ concord.to_utc_timestamp('archived_at') }} as archived_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

),

-- companies merged into another: HubSpot no longer lists them, but the warehouse keeps what it
-- loaded before the merge; the survivor names them in `hs_merged_object_ids` (';'-separated)
merged_away as (
    {% for position in range(1, 6) %}
    select trim({{ dbt.split_part('merged_object_ids', "';'", position) }}) as company_id
    from renamed
    where merged_object_ids is not null
    {{ 'union' if not loop.last }}
    {%- endfor %}

)

select
    renamed.*,
    coalesce(renamed.company_id in (
        select company_id from merged_away where company_id is not null and company_id <> ''
    ), false) as is_merged_away
from renamed
