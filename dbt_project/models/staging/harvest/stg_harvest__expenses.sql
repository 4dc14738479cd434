with

source as (

    select * from {{ source_or_empty('harvest', 'expenses') }}

),

renamed as (

    select
        -- ids
        id as expense_id,
        user__id as user_id,
        client__id as client_id,
        project__id as project_id,
        expense_category__id as expense_category_id,
        nullif(trim(project__code), '') as project_code,

        -- strings
        expense_category__name as expense_category_name,
        upper(client__currency) as currency_code,
        notes,
        locked_reason,

        -- numerics
        cast(total_cost as decimal(18, 2)) as total_cost,
        units,

        -- booleans
        coalesce(billable, false) as is_billable,
        coalesce(is_closed, false) as is_closed,
        coalesce(is_locked, false) as is_locked,
        coalesce(is_billed, false) as is_billed,

        -- dates
        cast(spent_date as date) as spent_date,

        -- timestamps
        {{ concord.to_utc_timestamp('created_at') }} as created_at,
        {{ concord.to_utc_timestamp('updated_at') }} as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
