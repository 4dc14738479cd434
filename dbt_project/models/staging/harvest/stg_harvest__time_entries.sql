-- Time entries as Harvest holds them now: an entry deleted in Harvest after it was loaded is
-- left out (not flagged: a flag every consumer had to filter would be one forgotten filter away
-- from counting deleted time as approved WIP). Its raw row stays in `raw_harvest.time_entries`.
-- Harvest reports no deletions. After each walk of the time entries the source lists the ones
-- that exist with a spent date from `swept_from` on (`time_entry_presence`, replaced by each
-- list; `swept_from` is `deletion_window_days`, 60, before the newest `updated_at` seen, see
-- ingestion/harvest). A landed entry whose spent date is on or after `swept_from`, that the
-- list lacks and that was loaded before the list was deleted. One landed by the list's own
-- load is kept (changed or deleted between the walk and the list, it is judged by the next
-- list). Entries older than the window are never left out: their deletion is not seen.
-- No list yet (a warehouse loaded before the sweep existed): nothing is left out.
with

landed as (

    select * from {{ source('harvest', 'time_entries') }}

),

presence as (

    select * from {{ source_or_empty('harvest', 'time_entry_presence') }}

),

sweep as (

    select
        max(swept_from) as swept_from,
        max(_dlt_load_id) as swept_in_load
    from presence

),

source as (

    select landed.*
    from landed
    cross join sweep
    left join presence
        on landed.id = presence.id
    where sweep.swept_from is null
       or cast(landed.spent_date as date) < sweep.swept_from
       or landed._dlt_load_id >= sweep.swept_in_load
       or presence.id is not null

),

renamed as (

    select
        -- ids
        id as time_entry_id,
        user__id as user_id,
        client__id as client_id,
        project__id as project_id,
        task__id as task_id,
        user_assignment__id as user_assignment_id,
        task_assignment__id as task_assignment_id,
        nullif(trim(project__code), '') as project_code,
        external_reference,

        -- strings
        user__name as user_name,
        client__name as client_name,
        project__name as project_name,
        task__name as task_name,
        upper(client__currency) as currency_code,
        notes,
        locked_reason,

        -- numerics
        cast(hours as decimal(18, 4)) as hours,
        cast(rounded_hours as decimal(18, 4)) as rounded_hours,
        cast(billable_rate as decimal(18, 2)) as billable_rate,
        cast(cost_rate as decimal(18, 2)) as cost_rate,

        -- booleans
        coalesce(billable, false) as is_billable,
        coalesce(budgeted, false) as is_budgeted,
        coalesce(is_closed, false) as is_closed,
        coalesce(is_locked, false) as is_locked,
        coalesce(is_billed, false) as is_billed,
        coalesce(is_running, false) as is_running,
        coalesce(task_assignment__billable, false) as is_task_billable,

        -- dates
        cast(spent_date as date) as spent_date,

        -- timestamps
        {{ concord.to_utc_timestamp('created_at') }} as created_at,
        {{ concord.to_utc_timestamp('updated_at') }} as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
