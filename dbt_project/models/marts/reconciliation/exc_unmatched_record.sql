-- A Stripe customer, Harvest client or ERP customer master that identity resolution could not
-- tie to any customer (no HubSpot company in its component): never dropped silently. Owned by
-- the record's own system. At risk: for a Stripe customer, the totals of its finalised,
-- non-void invoices (money billed to nobody the firm knows), in the customer's currency; else
-- 0, in the record's currency (Harvest client currency, the ERP legal entity's currency).
with

unmatched as (

    select * from {{ ref('int_customer_records') }}
    where is_unmatched
      and system in ('stripe', 'harvest', 'erp')

),

stripe_customers as (

    select customer_id, currency_code from {{ ref('int_stripe_customers') }}

),

stripe_invoices as (

    select invoice_id, customer_id, invoice_number, currency_code, total
    from {{ ref('stg_stripe__invoices') }}
    where status in ('open', 'paid', 'uncollectible')

),

harvest_clients as (

    select client_id, currency_code from {{ ref('stg_harvest__clients') }}

),

harvest_projects as (

    select project_id, client_id from {{ ref('stg_harvest__projects') }}

),

erp_partners as (

    select partner_id, company_id from {{ ref('stg_erp__partners') }}

),

erp_companies as (

    select company_id, currency_id from {{ ref('stg_erp__companies') }}

),

erp_currencies as (

    select currency_id, currency_code from {{ ref('stg_erp__currencies') }}

),

stripe_billed as (

    select
        customer_id,
        min(currency_code) as currency_code,
        sum(total) as billed_total,
        count(*) as invoices
    from stripe_invoices
    group by customer_id

),

valued as (

    select
        unmatched.record_key,
        unmatched.system,
        unmatched.record_id,
        unmatched.record_name,
        case unmatched.system when 'stripe' then 'customer' when 'harvest' then 'client' else 'res_partner' end
            as object_name,
        case when unmatched.system = 'stripe' then coalesce(stripe_billed.billed_total, 0) else 0 end as amount_at_risk,
        coalesce(stripe_customers.currency_code, stripe_billed.currency_code, harvest_clients.currency_code,
                 erp_currencies.currency_code) as currency_code,
        coalesce(stripe_billed.invoices, 0) as invoices
    from unmatched
    left join stripe_customers
        on unmatched.system = 'stripe' and unmatched.record_id = stripe_customers.customer_id
    left join stripe_billed
        on unmatched.system = 'stripe' and unmatched.record_id = stripe_billed.customer_id
    left join harvest_clients
        on unmatched.system = 'harvest' and unmatched.record_id = cast(harvest_clients.client_id as {{ dbt.type_string() }})
    left join erp_partners
        on unmatched.system = 'erp' and unmatched.record_id = cast(erp_partners.partner_id as {{ dbt.type_string() }})
    left join erp_companies
        on erp_partners.company_id = erp_companies.company_id
    left join erp_currencies
        on erp_companies.currency_id = erp_currencies.currency_id

),

-- the record, then what hangs off it: a Stripe customer's invoices, a Harvest client's projects
related as (

    select
        record_key,
        {{ concord.json_array_agg('record_ref', 'ref_position, record_ref') }} as related_record_ids
    from (
        select record_key, 0 as ref_position, system || ':' || object_name || ':' || record_id as record_ref
        from valued

        union all

        select valued.record_key, 1, {{ concord.record_ref('stripe', 'invoice', 'stripe_invoices.invoice_id') }}
        from valued
        inner join stripe_invoices
            on valued.system = 'stripe' and valued.record_id = stripe_invoices.customer_id

        union all

        select valued.record_key, 1, {{ concord.record_ref('harvest', 'project', 'harvest_projects.project_id') }}
        from valued
        inner join harvest_projects
            on valued.system = 'harvest' and valued.record_id = cast(harvest_projects.client_id as {{ dbt.type_string() }})
    ) as refs
    group by record_key

),

exceptions as (

    select
        'unmatched_record' as exception_type,
        'customer' as domain,
        valued.system as owner_system,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        valued.system as source_system,
        valued.record_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as subject_qualifier,
        related.related_record_ids,
        valued.amount_at_risk,
        valued.currency_code as currency,
        {{ concord.json_build_object({
            'record_name': 'valued.record_name',
            'object': 'valued.object_name',
            'finalised_invoices': 'valued.invoices',
        }) }} as details
    from valued
    inner join related
        on valued.record_key = related.record_key

)

{{ concord.reconciliation_exception_columns('exceptions') }}
