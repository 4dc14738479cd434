with

source as (

    select * from {{ source('hubspot', 'properties__options') }}

),

properties as (

    select _dlt_id, object_type, name from {{ source('hubspot', 'properties') }}

),

renamed as (

    select
        -- ids
        source._dlt_id as property_option_id,
        {{ concord.surrogate_key(['properties.object_type', 'properties.name']) }} as property_key,

        -- strings
        properties.object_type,
        properties.name as property_name,
        source.value as option_value,
        source.label as option_label,
        source.description,

        -- numerics
        source.display_order,

        -- booleans
        coalesce(source.hidden, false) as is_hidden

    from source
    left join properties
        on source._dlt_parent_id = properties._dlt_id

)

select * from renamed
