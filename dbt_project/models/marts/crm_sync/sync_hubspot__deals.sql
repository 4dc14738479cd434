-- What reverse ETL writes on each HubSpot deal: exactly the deal properties of the CRM contract
-- (reverse_etl/contract.py), one row per live (not archived) HubSpot deal, keyed by its HubSpot id. Amounts
-- are in the deal's currency (HubSpot's `deal_currency_code`, the currency of the deal's own
-- `amount`); an ERP or billing document in another currency is converted at its own date.
--   contract_value_erp  the total of the deal's ERP contract (the live sale order carrying the
--                       deal id); null when it has none, or only a cancelled one;
--   billed_to_date      every non-void invoice of that contract (Stripe `project_code` or the
--                       ERP invoice origin = the sale order name), net of credit notes, before
--                       tax (like the contract it is measured against);
--   remaining_to_bill   contract_value_erp - billed_to_date (negative: billed beyond the
--                       contract); null without a contract;
--   scope_mismatch      the reconciliation reports a `contract_value_mismatch` on the deal
--                       (sold scope and ERP contract disagree beyond `amount_tolerance`).
with

deals as (

    select * from {{ ref('engagements') }}
    where not is_archived

),

contracts as (

    select * from {{ ref('contracts') }}
    where not is_cancelled

),

receivables as (

    select * from {{ ref('int_receivables') }}
    where deal_id is not null

),

exceptions as (

    select * from {{ ref('int_reconciliation__exceptions') }}
    where exception_type = 'contract_value_mismatch'
      and source_system = 'hubspot'

),

deal_currency as (

    select
        deals.deal_id,
        coalesce(deals.currency_code, contracts.currency_code, '{{ var("reporting_currency") }}') as currency_code,
        contracts.sale_order_id,
        contracts.amount_total as contract_amount,
        contracts.currency_code as contract_currency_code,
        contracts.order_date
    from deals
    left join contracts
        on deals.sale_order_id = contracts.sale_order_id

),

billed as (

    select
        receivables.deal_id,
        sum({{ concord.convert_currency('receivables.billed_amount', 'receivables.currency_code',
                                        'deal_currency.currency_code', 'receivables.conversion_date') }}) as billed_to_date
    from receivables
    inner join deal_currency
        on receivables.deal_id = deal_currency.deal_id
    group by receivables.deal_id

),

mismatched as (

    select distinct source_record_id as deal_id
    from exceptions

),

final as (

    select
        deal_currency.deal_id as hubspot_deal_id,
        case
            when deal_currency.sale_order_id is not null
                then {{ concord.convert_currency('deal_currency.contract_amount', 'deal_currency.contract_currency_code',
                                                 'deal_currency.currency_code', 'deal_currency.order_date') }}
        end as contract_value_erp,
        coalesce(billed.billed_to_date, 0) as billed_to_date,
        mismatched.deal_id is not null as scope_mismatch
    from deal_currency
    left join billed
        on deal_currency.deal_id = billed.deal_id
    left join mismatched
        on deal_currency.deal_id = mismatched.deal_id

)

select
    cast(hubspot_deal_id as {{ dbt.type_string() }}) as hubspot_deal_id,
    cast(contract_value_erp as decimal(18, 2)) as contract_value_erp,
    cast(billed_to_date as decimal(18, 2)) as billed_to_date,
    cast(contract_value_erp - billed_to_date as decimal(18, 2)) as remaining_to_bill,
    cast(scope_mismatch as boolean) as scope_mismatch
from final
