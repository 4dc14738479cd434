-- The same customer holds different values of a field in two systems, judged against the
-- system that owns the field (DECISIONLOG.md, "Who owns which customer field"). One exception per attribute, on the record holding
-- the wrong value, owned by the system whose value is right:
--   vat      HubSpot `vat_number` vs the ERP partner's VAT (the ERP owns it), both present and
--            different once normalised (a European number typed without its country prefix
--            takes the customer's country); subject the HubSpot company;
--   country  the Stripe customer's address country vs the ERP partner's country (the ERP owns
--            it), both present; subject the Stripe customer;
--   domain   the Stripe customer's e-mail domain vs the HubSpot company's domain (HubSpot owns
--            it), both present, neither a free-mail domain, and the e-mail domain not one of the
--            company's additional domains either; subject the Stripe customer.
-- Amount at risk 0 (a data-quality finding), in the customer's billing currency.
with

customers as (

    select * from {{ ref('customers') }}

),

reconciliation_customers as (

    select customer_id, billing_currency_code from {{ ref('int_reconciliation__customers') }}

),

free_email_domains as (

    select lower(domain) as domain from {{ ref('free_email_domains') }}

),

compared as (

    select
        customers.customer_id,
        customers.hubspot_company_id,
        customers.erp_partner_id,
        customers.stripe_customer_id,
        reconciliation_customers.billing_currency_code,
        customers.hubspot_vat_number,
        customers.vat_number as erp_vat_number,
        {{ concord.normalize_vat('customers.hubspot_vat_number', 'customers.country_code') }} as hubspot_vat,
        {{ concord.normalize_vat('customers.vat_number', 'customers.country_code') }} as erp_vat,
        ';' || {{ concord.regexp_replace_all('lower(customers.hubspot_additional_domains)', ' ', '') }} || ';'
            as hubspot_additional_domains,
        customers.country_code as erp_country_code,
        customers.stripe_country_code,
        {{ concord.extract_domain('customers.domain') }} as hubspot_domain,
        {{ concord.extract_domain('customers.stripe_email_domain') }} as stripe_domain
    from customers
    inner join reconciliation_customers
        on customers.customer_id = reconciliation_customers.customer_id

),

mismatches as (

    select
        customer_id,
        'vat' as attribute,
        'erp' as owner_system,
        'hubspot' as source_system,
        hubspot_company_id as source_record_id,
        {{ concord.json_build_array([
            concord.record_ref('hubspot', 'company', 'hubspot_company_id'),
            concord.record_ref('erp', 'res_partner', 'erp_partner_id')]) }} as related_record_ids,
        billing_currency_code,
        erp_vat_number as owner_value,
        hubspot_vat_number as other_value
    from compared
    where hubspot_vat is not null
      and erp_vat is not null
      and hubspot_vat <> erp_vat

    union all

    select
        customer_id,
        'country',
        'erp',
        'stripe',
        stripe_customer_id,
        {{ concord.json_build_array([
            concord.record_ref('stripe', 'customer', 'stripe_customer_id'),
            concord.record_ref('erp', 'res_partner', 'erp_partner_id')]) }},
        billing_currency_code,
        erp_country_code,
        stripe_country_code
    from compared
    where erp_country_code is not null
      and stripe_country_code is not null
      and erp_country_code <> stripe_country_code

    union all

    select
        customer_id,
        'domain',
        'hubspot',
        'stripe',
        stripe_customer_id,
        {{ concord.json_build_array([
            concord.record_ref('stripe', 'customer', 'stripe_customer_id'),
            concord.record_ref('hubspot', 'company', 'hubspot_company_id')]) }},
        billing_currency_code,
        hubspot_domain,
        stripe_domain
    from compared
    where hubspot_domain is not null
      and stripe_domain is not null
      and hubspot_domain <> stripe_domain
      and coalesce(hubspot_additional_domains, '') not like '%;' || stripe_domain || ';%'
      and not exists (
          select 1 from free_email_domains
          where free_email_domains.domain in (compared.hubspot_domain, compared.stripe_domain)
      )

),

exceptions as (

    select
        'customer_attribute_mismatch' as exception_type,
        'customer' as domain,
        owner_system,
        customer_id,
        source_system,
        source_record_id,
        attribute as subject_qualifier,
        related_record_ids,
        0 as amount_at_risk,
        billing_currency_code as currency,
        {{ concord.json_build_object({
            'attribute': 'attribute',
            'owner_system': 'owner_system',
            'owner_value': 'owner_value',
            'other_system': 'source_system',
            'other_value': 'other_value',
        }) }} as details
    from mismatches

)

{{ concord.reconciliation_exception_columns('exceptions') }}
