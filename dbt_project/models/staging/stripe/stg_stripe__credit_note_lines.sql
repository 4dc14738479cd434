-- One row per credit note line (the `credit_notes__lines` child table), with the credit note's
-- id and currency taken from the parent row.
with

source as (

    select * from {{ source_or_empty('stripe', 'credit_notes__lines') }}

),

credit_notes as (

    select _dlt_id, id, currency from {{ source_or_empty('stripe', 'credit_notes') }}

),

renamed as (

    select
        -- ids
        source.id as credit_note_line_id,
        credit_notes.id as credit_note_id,
        source.invoice_line_item as invoice_line_id,

        -- strings
        source.type as line_type,
        source.description,
        upper(credit_notes.currency) as currency_code,

        -- numerics
        source._dlt_list_idx as line_position,
        source.quantity,
        {{ concord.minor_to_major('source.unit_amount', 'credit_notes.currency') }} as unit_amount,
        {{ concord.minor_to_major('source.amount', 'credit_notes.currency') }} as amount,
        {{ concord.minor_to_major('source.amount_excluding_tax', 'credit_notes.currency') }} as amount_excluding_tax,
        {{ concord.minor_to_major('coalesce(source.discount_amount, 0)', 'credit_notes.currency') }} as discount_amount

    from source
    left join credit_notes
        on source._dlt_parent_id = credit_notes._dlt_id

)

select * from renamed
