-- One row per customer with what the reconciliation asks of it: whether the ERP holds its
-- customer master (no ERP check runs for a customer the ERP lacks: `customer_missing_in_erp`
-- covers them) and the currency its customer-level exceptions are stated in, its billing
-- currency: the Stripe customer's currency, else its ERP contracts', else its deals', else its
-- legal entity's.
with

customers as (

    select * from {{ ref('customers') }}

),

engagements as (

    select * from {{ ref('engagements') }}

),

-- the currency of the customer's latest deal (won deals first)
latest_deal_currency as (

    select customer_id, currency_code
    from (
        select
            customer_id,
            currency_code,
            row_number() over (
                partition by customer_id
                order by case when is_closed_won then 0 else 1 end, created_at desc, deal_id desc
            ) as recency
        from engagements
        where customer_id is not null and currency_code is not null
    ) as ranked
    where recency = 1

)

select
    customers.customer_id,
    customers.hubspot_company_id,
    customers.erp_partner_id,
    customers.stripe_customer_id,
    customers.harvest_client_id,
    customers.has_erp_customer,
    case
        when customers.billing_currency_source in ('stripe_customer', 'erp_contract')
            then customers.billing_currency_code
        else coalesce(latest_deal_currency.currency_code, customers.billing_currency_code)
    end as billing_currency_code
from customers
left join latest_deal_currency
    on customers.customer_id = latest_deal_currency.customer_id
