with

source as (

    select * from {{ source('erp', 'sale_order_line') }}

),

renamed as (

    select
        -- ids
        id as sale_order_line_id,
        order_id as sale_order_id,
        company_id,
        currency_id,
        order_partner_id as partner_id,

        -- strings
        name as description,
        state,
        display_type,
        invoice_status,

        -- numerics
        sequence,
        product_uom_qty as quantity,
        price_unit,
        discount as discount_percent,
        price_subtotal,
        price_tax,
        price_total,
        qty_delivered as quantity_delivered,
        qty_invoiced as quantity_invoiced,
        qty_to_invoice as quantity_to_invoice,

        -- booleans
        coalesce(is_downpayment, false) as is_downpayment,

        -- timestamps
        cast(create_date as timestamp) as created_at,
        cast(write_date as timestamp) as updated_at,
        {{ concord.epoch_to_timestamp('_dlt_load_id') }} as loaded_at

    from source

)

select * from renamed
