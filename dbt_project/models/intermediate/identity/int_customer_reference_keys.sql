-- The references that tie system records to one another, as keys a record owns or points to.
-- Two records share a customer when one points to a key the other owns (see
-- `int_customer_records`). Key types:
--   hubspot_company  a HubSpot company id   owned by the company;   pointed to by Stripe metadata.hubspot_company_id
--   erp_ref          an ERP customer ref    owned by the partner;   pointed to by HubSpot erp_customer_ref, Stripe metadata.erp_customer_ref
--   erp_partner      an ERP partner id      owned by the partner;   pointed to through the engagement links the firm always keeps:
--                      HubSpot company <- its deals <- sale_order.client_order_ref; the sale order's customer
--                      Harvest client  <- its projects' code = sale order name; the sale order's customer
--                      Stripe customer <- its invoices' metadata.project_code = sale order name; the sale order's customer
--                      Stripe customer <- its invoices' number = ERP invoice ref; the ERP invoice's customer
-- A pointer whose key nobody owns (a reference to a record that does not exist, or to the
-- ERP's catch-all partner) ties nothing together.
with

candidates as (

    select record_key, system, record_id from {{ ref('int_customer_candidates') }}

),

hubspot_companies as (

    select * from {{ ref('stg_hubspot__companies') }}
    where not coalesce(is_merged_away, false)

),

deal_companies as (

    select * from {{ ref('stg_hubspot__deal_companies') }}

),

erp_partners as (

    select * from {{ ref('stg_erp__partners') }}

),

sale_orders as (

    select * from {{ ref('stg_erp__sale_orders') }}

),

account_moves as (

    select * from {{ ref('stg_erp__account_moves') }}

),

stripe_customers as (

    select * from {{ ref('int_stripe_customers') }}

),

stripe_invoices as (

    select * from {{ ref('stg_stripe__invoices') }}

),

harvest_projects as (

    select * from {{ ref('stg_harvest__projects') }}

),

-- the customer (commercial partner) of each sale order
sale_order_customers as (

    select
        sale_orders.sale_order_id,
        sale_orders.sale_order_name,
        sale_orders.client_order_ref,
        coalesce(erp_partners.commercial_partner_id, sale_orders.partner_id) as customer_partner_id
    from sale_orders
    left join erp_partners
        on sale_orders.partner_id = erp_partners.partner_id

),

owned as (

    select
        'hubspot:' || company_id as record_key,
        'hubspot_company' as key_type,
        company_id as key_value,
        true as is_owner,
        'hubspot company id' as evidence,
        1.0 as confidence
    from hubspot_companies

    union all

    select
        'erp:' || cast(partner_id as {{ dbt.type_string() }}),
        'erp_ref',
        customer_ref,
        true,
        'erp partner ref',
        1.0
    from erp_partners
    where customer_ref is not null

    union all

    select
        'erp:' || cast(partner_id as {{ dbt.type_string() }}),
        'erp_partner',
        cast(partner_id as {{ dbt.type_string() }}),
        true,
        'erp partner id',
        1.0
    from erp_partners

),

pointers as (

    select
        'hubspot:' || company_id as record_key,
        'erp_ref' as key_type,
        erp_customer_ref as key_value,
        false as is_owner,
        'hubspot erp_customer_ref = erp ref' as evidence,
        1.0 as confidence
    from hubspot_companies
    where erp_customer_ref is not null

    union all

    select
        'stripe:' || customer_id,
        'hubspot_company',
        hubspot_company_id,
        false,
        'stripe metadata.hubspot_company_id = hubspot id',
        1.0
    from stripe_customers
    where hubspot_company_id is not null

    union all

    select
        'stripe:' || customer_id,
        'erp_ref',
        erp_customer_ref,
        false,
        'stripe metadata.erp_customer_ref = erp ref',
        1.0
    from stripe_customers
    where erp_customer_ref is not null

    union all

    select distinct
        'hubspot:' || deal_companies.company_id,
        'erp_partner',
        cast(sale_order_customers.customer_partner_id as {{ dbt.type_string() }}),
        false,
        'hubspot deal id = erp sale_order.client_order_ref',
        0.98
    from deal_companies
    inner join sale_order_customers
        on deal_companies.deal_id = sale_order_customers.client_order_ref
    where deal_companies.is_primary

    union all

    select distinct
        'harvest:' || cast(harvest_projects.client_id as {{ dbt.type_string() }}),
        'erp_partner',
        cast(sale_order_customers.customer_partner_id as {{ dbt.type_string() }}),
        false,
        'harvest project code = erp sale order name',
        0.98
    from harvest_projects
    inner join sale_order_customers
        on harvest_projects.project_code = sale_order_customers.sale_order_name

    union all

    select distinct
        'stripe:' || stripe_invoices.customer_id,
        'erp_partner',
        cast(sale_order_customers.customer_partner_id as {{ dbt.type_string() }}),
        false,
        'stripe invoice metadata.project_code = erp sale order name',
        0.98
    from stripe_invoices
    inner join sale_order_customers
        on stripe_invoices.project_code = sale_order_customers.sale_order_name

    union all

    select distinct
        'stripe:' || stripe_invoices.customer_id,
        'erp_partner',
        cast(account_moves.commercial_partner_id as {{ dbt.type_string() }}),
        false,
        'stripe invoice number = erp invoice ref',
        0.98
    from stripe_invoices
    inner join account_moves
        on stripe_invoices.invoice_number = account_moves.ref
    where account_moves.move_type = 'out_invoice'

),

keys as (

    select * from owned
    union all
    select * from pointers

),

-- only records that are candidates, one row per record and key (the strongest evidence)
deduplicated as (

    select
        keys.record_key,
        keys.key_type,
        keys.key_value,
        keys.is_owner,
        keys.evidence,
        keys.confidence,
        row_number() over (
            partition by keys.record_key, keys.key_type, keys.key_value, keys.is_owner
            order by keys.confidence desc, keys.evidence
        ) as evidence_rank
    from keys
    inner join candidates
        on keys.record_key = candidates.record_key
    where keys.key_value is not null

)

select
    {{ concord.surrogate_key(['record_key', 'key_type', 'key_value', 'is_owner']) }} as reference_key_id,
    record_key,
    key_type,
    key_value,
    is_owner,
    evidence,
    confidence
from deduplicated
where evidence_rank = 1
