-- A closed-won deal with no PSA project once the activation SLA has passed: the deal closed
-- `activation_sla_days` before the as-of date, its customer has an ERP customer master (else
-- `customer_missing_in_erp` covers it, and no contract links a project to the deal), and no
-- Harvest project carries the code of the deal's sale order (or the deal has no sale order).
-- Subject: the deal; owned by Harvest. At risk: the deal amount, in its currency.
with

deals as (

    select * from {{ ref('engagements') }}
    where is_closed_won
      and close_at is not null
      and {{ dbt.dateadd('day', var('activation_sla_days'), 'close_at') }} <= {{ as_of() }}
      and not has_project

),

reconciliation_customers as (

    select customer_id from {{ ref('int_reconciliation__customers') }}
    where has_erp_customer

),

exceptions as (

    select
        'won_deal_without_project' as exception_type,
        'delivery' as domain,
        'harvest' as owner_system,
        deals.customer_id,
        'hubspot' as source_system,
        deals.deal_id as source_record_id,
        cast(null as {{ dbt.type_string() }}) as subject_qualifier,
        case
            when deals.sale_order_id is not null then {{ concord.json_build_array([
                concord.record_ref('hubspot', 'deal', 'deals.deal_id'),
                concord.record_ref('erp', 'sale_order', 'deals.sale_order_id')]) }}
            else {{ concord.json_build_array([concord.record_ref('hubspot', 'deal', 'deals.deal_id')]) }}
        end as related_record_ids,
        deals.amount as amount_at_risk,
        deals.currency_code as currency,
        {{ concord.json_build_object({
            'expected_project_code': 'deals.sale_order_name',
            'closed_at': 'deals.close_at',
            'activation_due_at': dbt.dateadd('day', var('activation_sla_days'), 'deals.close_at'),
        }) }} as details
    from deals
    inner join reconciliation_customers
        on deals.customer_id = reconciliation_customers.customer_id

)

{{ concord.reconciliation_exception_columns('exceptions') }}
