-- Every exception the reconciliation finds between the four systems, one row each, in the
-- shape of `reconciliation_exceptions` (without `first_detected_at`): the union of the
-- `exc_<type>` models. `crm_financial_status_stale` is not here: it compares the CRM with the
-- CRM sync models, which count these exceptions (`open_data_issues_count`), so it joins the
-- list only in `reconciliation_exceptions`.
{%- set exception_models = [
    'exc_customer_missing_in_erp',
    'exc_customer_attribute_mismatch',
    'exc_duplicate_customer',
    'exc_contract_value_mismatch',
    'exc_won_deal_without_project',
    'exc_approved_time_unbilled',
    'exc_invoice_missing_in_erp',
    'exc_invoice_amount_mismatch',
    'exc_invoice_status_mismatch',
    'exc_payment_unapplied',
    'exc_unmatched_record',
] %}
{%- for model in exception_models %}

select
    exception_id,
    exception_type,
    domain,
    severity,
    owner_system,
    customer_id,
    source_system,
    source_record_id,
    related_record_ids,
    amount_at_risk,
    currency,
    amount_at_risk_reporting,
    detected_at,
    details
from {{ ref(model) }}
{%- if not loop.last %}

union all
{%- endif %}
{%- endfor %}
