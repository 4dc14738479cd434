-- Identity resolution: which customer each system record belongs to.
--
-- 1. Match keys per record: the shared references of `int_customer_reference_keys`, and the
--    record's own normalised VAT, e-mail/web domain (never a free-mail domain) and name.
-- 2. Edges between records, strongest first:
--      shared_reference (1.00 for ids/refs, 0.98 through engagement documents): one record
--        points to a key the other owns;
--      vat (0.95): same normalised VAT;
--      domain (0.90): same domain, unless both records carry VATs that differ;
--      name (0.80): same normalised name, unless both carry VATs that differ or both carry
--        domains that differ; and never on an ambiguous name: one that records of two or more
--        VATs, or HubSpot and ERP records of two or more domains, carry (homonyms: different
--        companies of the same name, whose PSA clients carry nothing but the name).
--    A HubSpot company's additional domains (`hs_additional_domains`) are domains of it too.
--    A VAT, domain or name shared by more than `identity_max_key_group` records identifies
--    nobody and matches nothing.
-- 3. Manual overrides (`customer_overrides` seed) win: `split` drops every automatic edge of
--    the record; `merge` (or a split with a target) adds an edge to the target record.
-- 4. Connected components over the edges (label propagation in a recursive CTE). A component
--    holding a HubSpot company is a customer, anchored on its earliest-created HubSpot company:
--    `customer_id` is derived from that company's id, so it is stable across runs. Records of a
--    component without one are unmatched (`customer_id` null, `is_unmatched`).
-- 5. Within a customer, several live records of one system are duplicates: the earliest created
--    is the primary record, the others are flagged `is_duplicate` and not `is_primary`. A record
--    its system has deleted (a Stripe customer) still belongs to its customer (its invoices are
--    the client's history) but is nobody's duplicate, and primary only where nothing is live.
with recursive

candidates as (

    select * from {{ ref('int_customer_candidates') }}

),

reference_keys as (

    select * from {{ ref('int_customer_reference_keys') }}

),

free_email_domains as (

    select lower(domain) as domain from {{ ref('free_email_domains') }}

),

overrides as (

    select
        lower(trim(system)) || ':' || trim(record_id) as record_key,
        lower(trim(action)) as action,
        case
            when nullif(trim(target_record_id), '') is not null
                then lower(trim(target_system)) || ':' || trim(target_record_id)
        end as target_record_key
    from {{ ref('customer_overrides') }}

),

records as (

    select
        candidates.record_key,
        candidates.system,
        candidates.record_id,
        candidates.record_name,
        candidates.is_archived,
        coalesce(candidates.is_deleted, false) as is_deleted,
        candidates.created_at,
        {{ concord.normalize_company_name('candidates.record_name') }} as name_normalized,
        {{ concord.normalize_vat('candidates.vat', 'candidates.country_code') }} as vat_normalized,
        {{ concord.extract_domain('candidates.domain_source') }} as domain,
        candidates.additional_domains
    from candidates

),

match_attributes as (

    select
        records.*,
        case when free_email_domains.domain is null then records.domain end as match_domain
    from records
    left join free_email_domains
        on records.domain = free_email_domains.domain

),

additional_domains as (
    {% for position in range(1, 6) %}
    select record_key, {{ concord.extract_domain(dbt.split_part('additional_domains', "';'", position)) }} as additional_domain
    from match_attributes
    where additional_domains is not null
    {{ 'union all' if not loop.last }}
    {%- endfor %}

),

-- a name two legal entities (two VATs) or two companies (two domains in the CRM or the ERP) bear
ambiguous_names as (

    select name_normalized
    from match_attributes
    where name_normalized is not null
    group by name_normalized
    having count(distinct vat_normalized) > 1
        or count(distinct case when system in ('hubspot', 'erp') then match_domain end) > 1

),

attribute_keys as (

    select record_key, 'vat' as key_type, vat_normalized as key_value
    from match_attributes
    where vat_normalized is not null

    union all

    select record_key, 'domain', match_domain
    from match_attributes
    where match_domain is not null

    union all

    select record_key, 'domain', additional_domain
    from additional_domains
    where additional_domain is not null

    union all

    select record_key, 'name', name_normalized
    from match_attributes
    where name_normalized is not null and length(name_normalized) >= 3
      and name_normalized not in (select name_normalized from ambiguous_names)

),

distinctive_attribute_keys as (

    select
        record_key,
        key_type,
        key_value
    from (
        select
            attribute_keys.*,
            count(*) over (partition by key_type, key_value) as records_sharing
        from attribute_keys
    ) as counted
    where records_sharing <= {{ var('identity_max_key_group', 10) }}

),

attribute_edges as (

    select
        left_key.record_key as record_key_a,
        right_key.record_key as record_key_b,
        left_key.key_type as match_method,
        case left_key.key_type when 'vat' then 0.95 when 'domain' then 0.90 else 0.80 end as confidence,
        left_key.key_type || ' ' || left_key.key_value as evidence
    from distinctive_attribute_keys as left_key
    inner join distinctive_attribute_keys as right_key
        on left_key.key_type = right_key.key_type
        and left_key.key_value = right_key.key_value
        and left_key.record_key < right_key.record_key
    inner join match_attributes as left_record
        on left_key.record_key = left_record.record_key
    inner join match_attributes as right_record
        on right_key.record_key = right_record.record_key
    where
        -- different VATs are different legal entities, whatever the domain or name says
        (left_key.key_type = 'vat'
            or left_record.vat_normalized is null
            or right_record.vat_normalized is null
            or left_record.vat_normalized = right_record.vat_normalized)
        -- different domains are different companies, whatever the name says
        and (left_key.key_type <> 'name'
            or left_record.match_domain is null
            or right_record.match_domain is null
            or left_record.match_domain = right_record.match_domain)

),

reference_edges as (

    select
        pointer.record_key as record_key_a,
        owner.record_key as record_key_b,
        'shared_reference' as match_method,
        case when pointer.confidence < owner.confidence then pointer.confidence else owner.confidence end as confidence,
        case when pointer.is_owner then owner.evidence else pointer.evidence end as evidence
    from reference_keys as pointer
    inner join reference_keys as owner
        on pointer.key_type = owner.key_type
        and pointer.key_value = owner.key_value
        and pointer.record_key <> owner.record_key
        and owner.is_owner
        -- owner-owner pairs once
        and (not pointer.is_owner or pointer.record_key < owner.record_key)

),

automatic_edges as (

    select * from attribute_edges
    union all
    select * from reference_edges

),

override_edges as (

    select
        overrides.record_key as record_key_a,
        overrides.target_record_key as record_key_b,
        'manual_override' as match_method,
        1.0 as confidence,
        'customer_overrides: ' || overrides.action as evidence
    from overrides
    where overrides.target_record_key is not null
      and overrides.action in ('merge', 'split')
      and overrides.record_key in (select record_key from records)
      and overrides.target_record_key in (select record_key from records)

),

edges as (

    select automatic_edges.*
    from automatic_edges
    where automatic_edges.record_key_a not in (select record_key from overrides where action = 'split')
      and automatic_edges.record_key_b not in (select record_key from overrides where action = 'split')

    union all

    select * from override_edges

),

neighbours as (

    select record_key_a as record_key, record_key_b as neighbour_key from edges
    union
    select record_key_b, record_key_a from edges

),

reachable (record_key, reached_key) as (

    select record_key, record_key from records

    union

    select reachable.record_key, neighbours.neighbour_key
    from reachable
    inner join neighbours
        on reachable.reached_key = neighbours.record_key

),

components as (

    select
        record_key,
        min(reached_key) as component_key
    from reachable
    group by record_key

),

anchors as (

    select
        component_key,
        record_id as anchor_hubspot_company_id
    from (
        select
            components.component_key,
            records.record_id,
            row_number() over (
                partition by components.component_key
                order by records.created_at, records.record_id
            ) as anchor_rank
        from components
        inner join records
            on components.record_key = records.record_key
        where records.system = 'hubspot'
    ) as ranked
    where anchor_rank = 1

),

best_edges as (

    select
        record_key,
        match_method,
        confidence,
        evidence,
        matched_record_key
    from (
        select
            record_key,
            match_method,
            confidence,
            evidence,
            matched_record_key,
            row_number() over (
                partition by record_key
                order by
                    case match_method when 'manual_override' then 0 else 1 end,
                    confidence desc,
                    matched_record_key
            ) as edge_rank
        from (
            select record_key_a as record_key, record_key_b as matched_record_key, match_method, confidence, evidence
            from edges
            union all
            select record_key_b, record_key_a, match_method, confidence, evidence
            from edges
        ) as both_directions
    ) as ranked
    where edge_rank = 1

),

assigned as (

    select
        records.record_key,
        records.system,
        records.record_id,
        records.record_name,
        records.name_normalized,
        records.vat_normalized,
        records.domain,
        records.is_archived,
        records.is_deleted,
        records.created_at,
        components.component_key,
        anchors.anchor_hubspot_company_id,
        case
            when anchors.anchor_hubspot_company_id is not null
                then {{ concord.surrogate_key(["'hubspot'", 'anchors.anchor_hubspot_company_id']) }}
        end as customer_id,
        anchors.anchor_hubspot_company_id is null as is_unmatched,
        coalesce(records.system = 'hubspot' and records.record_id = anchors.anchor_hubspot_company_id, false) as is_anchor,
        best_edges.match_method as best_edge_method,
        best_edges.confidence as best_edge_confidence,
        best_edges.evidence as best_edge_evidence,
        best_edges.matched_record_key,
        row_number() over (
            partition by components.component_key, records.system
            order by records.is_deleted, records.created_at, records.record_id
        ) as system_rank,
        count(*) over (partition by components.component_key, records.system) as system_records,
        count(case when not records.is_deleted then 1 end) over (
            partition by components.component_key, records.system
        ) as live_system_records,
        first_value(records.record_id) over (
            partition by components.component_key, records.system
            order by records.is_deleted, records.created_at, records.record_id
        ) as primary_record_id
    from records
    inner join components
        on records.record_key = components.record_key
    left join anchors
        on components.component_key = anchors.component_key
    left join best_edges
        on records.record_key = best_edges.record_key

),

final as (

    select
        record_key,
        system,
        record_id,
        customer_id,
        {{ concord.surrogate_key(['component_key']) }} as component_id,
        anchor_hubspot_company_id,
        case
            when is_anchor then 'anchor'
            else best_edge_method
        end as match_method,
        cast(case
            when is_anchor then 1.0
            else coalesce(best_edge_confidence, 0.0)
        end as decimal(4, 2)) as confidence,
        case
            when is_anchor then 'earliest-created HubSpot company of the customer'
            else best_edge_evidence
        end as match_evidence,
        case when not is_anchor then matched_record_key end as matched_record_key,
        record_name,
        name_normalized,
        vat_normalized,
        domain,
        is_unmatched,
        is_anchor,
        not is_unmatched and not is_deleted and live_system_records > 1 as is_duplicate,
        system_rank = 1 as is_primary,
        primary_record_id,
        system_records as records_in_system,
        is_archived,
        is_deleted,
        created_at
    from assigned

)

select * from final
