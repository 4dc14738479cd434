-- One row per invoice line (the `invoices__lines` child table), with the invoice id taken from
-- the parent row.
with

source as (

    select * from {{ source('stripe', 'invoices__lines') }}

),

invoices as (

    select _dlt_id, id from {{ source('stripe', 'invoices') }}

),

renamed as (

    select
        -- ids
        source.id as invoice_line_id,
        invoices.id as invoice_id,
        source.invoice_item as invoice_item_id,
        source.subscription as subscription_id,
        nullif(trim({{ concord.json_extract_text('source.metadata', 'project_code') }}), '') as project_code,

        -- strings
        source.type as line_type,
        nullif(trim({{ concord.json_extract_text('source.metadata', 'kind') }}), '') as line_kind,
        source.description,
        upper(source.currency) as currency_code,

        -- numerics
        source._dlt_list_idx as line_position,
        source.quantity,
        {{ concord.minor_to_major('source.amount', 'source.currency') }} as amount,
        {{ concord.minor_to_major('source.amount_excluding_tax', 'source.currency') }} as amount_excluding_tax,

        -- timestamps
        {{ concord.epoch_to_timestamp(concord.json_extract_text('source.period', 'start')) }} as period_start_at,
        {{ concord.epoch_to_timestamp(concord.json_extract_text('source.period', 'end')) }} as period_end_at

    from source
    left join invoices
        on source._dlt_parent_id = invoices._dlt_id

)

select * from renamed
