-- One row per association of a contact to a company (the `contacts__associations` child table),
-- with the contact's id taken from the parent row.
with

source as (

    select * from {{ source('hubspot', 'contacts__associations') }}

),

contacts as (

    select _dlt_id, id from {{ source('hubspot', 'contacts') }}

),

renamed as (

    select
        -- ids
        source._dlt_id as contact_company_association_id,
        cast(contacts.id as {{ dbt.type_string() }}) as contact_id,
        cast(source.to_id as {{ dbt.type_string() }}) as company_id,
        source.type_id as association_type_id,

        -- strings
        source.to_type as associated_object_type,
        source.label as association_label,

        -- numerics
        source._dlt_list_idx as association_position,

        -- booleans
        coalesce(source.label = 'Primary', false) as is_primary

    from source
    left join contacts
        on source._dlt_parent_id = contacts._dlt_id

)

select * from renamed
