-- Journal entries: customer invoices (`out_invoice`) and credit notes (`out_refund`), and
-- anything else the ERP posts. Amounts are in the document currency; the `*_signed` amounts
-- are Odoo's, in the company's currency and negative for credit notes.
with

source as (

    select * from {{ source('erp', 'account_move') }}

),

renamed as (

    select
        -- ids
        id as move_id,
        journal_id,
        company_id,
        partner_id,
        commercial_partner_id,
        currency_id,
        reversed_entry_id,
        nullif(trim(ref), '') as ref,
        nullif(trim(payment_reference), '') as payment_reference,
        nullif(trim(invoice_origin), '') as invoice_origin,

        -- strings
        name as move_name,
        move_type,
        state,
        payment_state,

        -- numerics (document currency)
        invoice_currency_rate,
        amount_untaxed,
        amount_tax,
        amount_total,
        amount_residual,

        -- numerics (company currency, signed)
        amount_untaxed_signed,
        amount_tax_signed,
        amount_total_signed,
        amount_residual_signed,
        amount_total_in_currency_signed,

        -- booleans
        move_type in ('out_invoice', 'out_refund') as is_customer_document,

        -- dates
        date as accounting_date,
        invoice_date,
        invoice_date_due,

        -- timestamps
        cast(create_date as timestamp) as created_at,
        cast(write_date as timestamp) as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
