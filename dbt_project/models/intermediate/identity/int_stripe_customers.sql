-- Every Stripe customer the customer list or an invoice names, one row each: those Stripe lists
-- (a customer deleted after a load stays as last loaded, `is_deleted`), and those known only
-- from their invoices (deleted before the first load: Stripe retrieves them as bare tombstones),
-- described by their latest invoice's snapshot of the customer (name, e-mail, currency). Their
-- invoices stay the client's history, so identity resolution must still place them.
with

listed as (

    select * from {{ ref('stg_stripe__customers') }}

),

invoices as (

    select * from {{ ref('stg_stripe__invoices') }}

),

unlisted_invoices as (

    select
        invoices.customer_id,
        invoices.customer_name,
        invoices.customer_email,
        invoices.currency_code,
        invoices.created_at,
        row_number() over (
            partition by invoices.customer_id
            order by invoices.created_at desc, invoices.invoice_id desc
        ) as recency,
        min(invoices.created_at) over (partition by invoices.customer_id) as first_invoiced_at
    from invoices
    left join listed
        on invoices.customer_id = listed.customer_id
    where listed.customer_id is null

)

select
    customer_id,
    erp_customer_ref,
    hubspot_company_id,
    customer_name,
    email,
    currency_code,
    address_country_code,
    is_deleted,
    'customer_list' as known_from,
    created_at
from listed

union all

select
    customer_id,
    cast(null as {{ dbt.type_string() }}) as erp_customer_ref,
    cast(null as {{ dbt.type_string() }}) as hubspot_company_id,
    customer_name,
    customer_email as email,
    currency_code,
    cast(null as {{ dbt.type_string() }}) as address_country_code,
    true as is_deleted,
    'invoices' as known_from,
    first_invoiced_at as created_at
from unlisted_invoices
where recency = 1
