-- One row per association of a deal to a company (the `deals__associations` child table), with
-- the deal's id taken from the parent row. HubSpot lists each link twice (the `Primary` label,
-- type 5, and the unlabeled type 341): `is_primary` tells them apart.
with

source as (

    select * from {{ source('hubspot', 'deals__associations') }}

),

deals as (

    select _dlt_id, id from {{ source('hubspot', 'deals') }}

),

renamed as (

    select
        -- ids
        source._dlt_id as deal_company_association_id,
        cast(deals.id as {{ dbt.type_string() }}) as deal_id,
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
    left join deals
        on source._dlt_parent_id = deals._dlt_id

)

select * from renamed
