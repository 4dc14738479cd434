-- A client the CRM has won, with no ERP customer master once the ERP set-up SLA has passed:
-- nothing can be contracted or invoiced in the ERP. Judged per customer (anchored on its
-- HubSpot company) that identity resolution found no ERP customer master for, once its first
-- closed-won deal closed `erp_setup_sla_days` before the as-of date.
-- At risk: the amounts (as the CRM shows them now) of its won deals closed by the as-of date,
-- in the deals' currency (converted at the as-of rate to the billing currency, should its
-- deals be in several).
with

customers as (

    select * from {{ ref('int_reconciliation__customers') }}
    where not has_erp_customer

),

won_deals as (

    select * from {{ ref('engagements') }}
    where is_closed_won
      and close_at <= {{ as_of() }}

),

stripe_invoices as (

    select customer_id, stripe_invoice_id, stripe_finalized_at
    from {{ ref('invoices') }}
    where stripe_invoice_id is not null
      and stripe_finalized_at is not null

),

per_customer as (

    select
        customers.customer_id,
        customers.hubspot_company_id,
        customers.billing_currency_code,
        min(won_deals.close_at) as first_won_at,
        count(*) as won_deals,
        count(distinct won_deals.currency_code) as deal_currencies,
        min(won_deals.currency_code) as deal_currency_code
    from customers
    inner join won_deals
        on customers.customer_id = won_deals.customer_id
    group by customers.customer_id, customers.hubspot_company_id, customers.billing_currency_code

),

overdue as (

    select
        per_customer.*,
        case when deal_currencies = 1 then deal_currency_code else billing_currency_code end as currency_code
    from per_customer
    where {{ dbt.dateadd('day', var('erp_setup_sla_days'), 'first_won_at') }} <= {{ as_of() }}

),

amounts as (

    select
        overdue.customer_id,
        sum(
            {{ concord.convert_currency('won_deals.amount', 'won_deals.currency_code', 'overdue.currency_code',
                                        'cast(' ~ as_of() ~ ' as date)', round_to=none) }}
        ) as amount_at_risk
    from overdue
    inner join won_deals
        on overdue.customer_id = won_deals.customer_id
    group by overdue.customer_id

),

related as (

    select customer_id, 0 as ref_position, {{ concord.record_ref('hubspot', 'company', 'hubspot_company_id') }} as record_ref
    from overdue

    union all

    select overdue.customer_id, 1, {{ concord.record_ref('hubspot', 'deal', 'won_deals.deal_id') }}
    from overdue
    inner join won_deals
        on overdue.customer_id = won_deals.customer_id

    union all

    select overdue.customer_id, 2, {{ concord.record_ref('stripe', 'invoice', 'stripe_invoices.stripe_invoice_id') }}
    from overdue
    inner join stripe_invoices
        on overdue.customer_id = stripe_invoices.customer_id

),

related_per_customer as (

    select
        customer_id,
        {{ concord.json_array_agg('record_ref', 'ref_position, record_ref') }} as related_record_ids
    from related
    group by customer_id

),

exceptions as (

    select
        'customer_missing_in_erp' as exception_type,
        'customer' as domain,
        'erp' as owner_system,
        overdue.customer_id,
        'hubspot' as source_system,
        overdue.hubspot_company_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as subject_qualifier,
        related_per_customer.related_record_ids,
        amounts.amount_at_risk,
        overdue.currency_code as currency,
        {{ concord.json_build_object({
            'won_deals': 'overdue.won_deals',
            'first_won_at': 'overdue.first_won_at',
            'erp_setup_due_at': dbt.dateadd('day', var('erp_setup_sla_days'), 'overdue.first_won_at'),
        }) }} as details
    from overdue
    inner join amounts
        on overdue.customer_id = amounts.customer_id
    inner join related_per_customer
        on overdue.customer_id = related_per_customer.customer_id

)

{{ concord.reconciliation_exception_columns('exceptions') }}
