-- What reverse ETL writes on each HubSpot company: exactly the company properties of the CRM
-- contract (reverse_etl/contract.py, group "Financial status"), one row per live HubSpot
-- company (not archived, not merged into another: HubSpot rejects writes to both), keyed by its
-- HubSpot id. Amounts are in the company's billing currency (`billing_currency`). A duplicate HubSpot company of one client shows the same figures as the
-- primary one: both stand for the same client. How each property is computed:
-- int_customer_financials and DECISIONLOG.md, "CRM sync".
--
-- financial_status, worst first:
--   collections   an open invoice billing marked uncollectible, or one more than
--                 `collections_after_days_overdue` (90) days past due;
--   in_dispute    an open Stripe dispute;
--   overdue       an amount past its due date (more than `amount_tolerance`);
--   good_standing otherwise.
with

companies as (

    select * from {{ ref('stg_hubspot__companies') }}
    where not is_archived
      and not coalesce(is_merged_away, false)

),

customer_records as (

    select record_id, customer_id from {{ ref('int_customer_records') }}
    where system = 'hubspot'

),

financials as (

    select * from {{ ref('int_customer_financials') }}

),

final as (

    select
        cast(companies.company_id as {{ dbt.type_string() }}) as hubspot_company_id,
        coalesce(financials.ar_balance, 0) as ar_balance,
        coalesce(financials.ar_overdue_amount, 0) as ar_overdue_amount,
        coalesce(financials.ar_oldest_overdue_days, 0) as ar_oldest_overdue_days,
        financials.last_invoice_date,
        financials.last_payment_date,
        coalesce(financials.open_disputes_count, 0) as open_disputes_count,
        coalesce(financials.unbilled_wip_amount, 0) as unbilled_wip_amount,
        coalesce(financials.lifetime_billed, 0) as lifetime_billed,
        case
            when financials.uncollectible_invoices > 0
              or financials.ar_oldest_overdue_days > {{ var('collections_after_days_overdue', 90) }}
                then 'collections'
            when financials.open_disputes_count > 0
                then 'in_dispute'
            when financials.ar_overdue_amount > {{ var('amount_tolerance') }}
                then 'overdue'
            else 'good_standing'
        end as financial_status,
        coalesce(financials.open_data_issues_count, 0) as open_data_issues_count,
        {{ as_of() }} as financial_status_synced_at,
        coalesce(financials.billing_currency, '{{ var("reporting_currency") }}') as billing_currency
    from companies
    left join customer_records
        on companies.company_id = customer_records.record_id
    left join financials
        on customer_records.customer_id = financials.customer_id

)

select
    cast(hubspot_company_id as {{ dbt.type_string() }}) as hubspot_company_id,
    cast(ar_balance as decimal(18, 2)) as ar_balance,
    cast(ar_overdue_amount as decimal(18, 2)) as ar_overdue_amount,
    cast(ar_oldest_overdue_days as integer) as ar_oldest_overdue_days,
    cast(last_invoice_date as date) as last_invoice_date,
    cast(last_payment_date as date) as last_payment_date,
    cast(open_disputes_count as integer) as open_disputes_count,
    cast(unbilled_wip_amount as decimal(18, 2)) as unbilled_wip_amount,
    cast(lifetime_billed as decimal(18, 2)) as lifetime_billed,
    cast(financial_status as {{ dbt.type_string() }}) as financial_status,
    cast(open_data_issues_count as integer) as open_data_issues_count,
    cast(financial_status_synced_at as timestamp) as financial_status_synced_at,
    cast(billing_currency as {{ dbt.type_string() }}) as billing_currency
from final
