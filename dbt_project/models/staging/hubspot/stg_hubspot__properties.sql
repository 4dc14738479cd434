with

source as (

    select * from {{ source('hubspot', 'properties') }}

),

renamed as (

    select
        -- ids
        {{ concord.surrogate_key(['object_type', 'name']) }} as property_key,
        _dlt_id as property_row_id,

        -- strings
        object_type,
        name as property_name,
        label as property_label,
        type as property_type,
        field_type,
        group_name,
        description,

        -- numerics
        display_order,

        -- booleans
        coalesce(calculated, false) as is_calculated,
        coalesce(hidden, false) as is_hidden,
        coalesce(hubspot_defined, false) as is_hubspot_defined,
        coalesce(has_unique_value, false) as has_unique_value,
        coalesce(form_field, false) as is_form_field,
        coalesce(archived, false) as is_archived,

        -- timestamps
        {{ concord.iso_to_utc_timestamp('created_at') }} as created_at,
        {{ concord.iso_to_utc_timestamp('updated_at') }} as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
