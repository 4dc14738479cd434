-- Sold scope and contract disagree: a closed-won HubSpot deal and the ERP sale order carrying
-- its id (`client_order_ref`) differ in amount by more than `amount_tolerance` (the deal
-- amended in the CRM after close, or the order keyed with another amount). Cancelled orders
-- are no contract. Subject: the deal; owned by the ERP, which owns contracts and must hold
-- what was sold. At risk: |deal amount - order amount| in the deal's currency (an order in
-- another currency converted at its order date; both compared in cents).
with

deals as (

    select * from {{ ref('engagements') }}
    where is_closed_won
      and sale_order_id is not null

),

contracts as (

    select * from {{ ref('contracts') }}
    where not is_cancelled

),

compared as (

    select
        deals.deal_id,
        deals.customer_id,
        deals.currency_code,
        cast(deals.amount as decimal(18, 2)) as deal_amount,
        contracts.sale_order_id,
        contracts.sale_order_name,
        contracts.currency_code as contract_currency_code,
        contracts.amount_total as contract_amount,
        {{ concord.convert_currency('contracts.amount_total', 'contracts.currency_code', 'deals.currency_code',
                                    'contracts.order_date') }} as contract_amount_in_deal_currency
    from deals
    inner join contracts
        on deals.sale_order_id = contracts.sale_order_id

),

exceptions as (

    select
        'contract_value_mismatch' as exception_type,
        'contract' as domain,
        'erp' as owner_system,
        customer_id,
        'hubspot' as source_system,
        deal_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as subject_qualifier,
        {{ concord.json_build_array([
            concord.record_ref('hubspot', 'deal', 'deal_id'),
            concord.record_ref('erp', 'sale_order', 'sale_order_id')]) }} as related_record_ids,
        abs(deal_amount - contract_amount_in_deal_currency) as amount_at_risk,
        currency_code as currency,
        {{ concord.json_build_object({
            'crm_amount': 'deal_amount',
            'erp_amount': 'contract_amount',
            'erp_currency': 'contract_currency_code',
            'sale_order_name': 'sale_order_name',
        }) }} as details
    from compared
    where abs(deal_amount - contract_amount_in_deal_currency) > {{ var('amount_tolerance') }}

)

{{ concord.reconciliation_exception_columns('exceptions') }}
