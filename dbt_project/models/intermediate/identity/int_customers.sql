-- One row per customer (a matched component anchored on a HubSpot company), with its primary
-- record in each system and how many records each system holds for it.
with

customer_records as (

    select * from {{ ref('int_customer_records') }}
    where not is_unmatched

),

aggregated as (

    select
        customer_id,
        max(anchor_hubspot_company_id) as hubspot_company_id,
        max(case when system = 'erp' and is_primary then record_id end) as erp_partner_id,
        max(case when system = 'stripe' and is_primary then record_id end) as stripe_customer_id,
        max(case when system = 'harvest' and is_primary then record_id end) as harvest_client_id,
        cast(sum(case when system = 'hubspot' then 1 else 0 end) as integer) as hubspot_records,
        cast(sum(case when system = 'erp' then 1 else 0 end) as integer) as erp_records,
        cast(sum(case when system = 'stripe' then 1 else 0 end) as integer) as stripe_records,
        cast(sum(case when system = 'harvest' then 1 else 0 end) as integer) as harvest_records,
        min(case when not is_anchor then confidence end) as weakest_match_confidence,
        max(case when is_duplicate then 1 else 0 end) = 1 as has_duplicates
    from customer_records
    group by customer_id

)

select * from aggregated
