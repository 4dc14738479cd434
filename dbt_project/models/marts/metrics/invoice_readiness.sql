-- Invoice readiness: one row per approved, billable Harvest time entry, from the moment it was
-- ready to invoice to the moment it was invoiced (or, not yet invoiced, how long it has waited).
--
-- Ready: time is billed by calendar month (T&M is invoiced monthly), so it is ready once its
-- month has ended and it is approved: `ready_at` = the later of the start of the next month and
-- the approval. Harvest keeps no approval time: while an entry waits approved and unbilled its
-- `updated_at` is the approval (nothing else touches it); once it is invoiced that is overwritten,
-- and the entry counts as ready at its month's end (an entry of a month's last week, approved
-- the following Monday to Thursday, then counts up to four days more latency).
-- Invoiced: the finalisation of the billing invoice of the entry's project (Stripe
-- `project_code`, else the ERP invoice origin) whose period covers the day the time was spent
-- (Harvest's `is_billed` is only a hand-made mark; see DECISIONLOG, "Unbilled time").
-- Latency and waiting times are in days (to the hour), never negative. The legal entity is the
-- contract's, else the customer's; `billable_value_functional` is in its currency at the
-- spent date's rate.
with

time_entries as (

    select * from {{ ref('time_entries') }}
    where is_billable
      and is_approved

),

invoices as (

    select invoice_key, stripe_invoice_id, project_code, stripe_finalized_at
    from {{ ref('invoices') }}
    where stripe_finalized_at is not null
      and project_code is not null
      and coalesce(stripe_status, '') <> 'void'

),

stripe_invoices as (

    select invoice_id, period_start_at, period_end_at from {{ ref('stg_stripe__invoices') }}

),

contracts as (

    select sale_order_id, legal_entity_id from {{ ref('contracts') }}

),

customers as (

    select customer_id, legal_entity_id from {{ ref('customers') }}

),

legal_entities as (

    select entities.company_id, currencies.currency_code
    from {{ ref('stg_erp__companies') }} as entities
    left join {{ ref('stg_erp__currencies') }} as currencies
        on entities.currency_id = currencies.currency_id

),

-- the invoice that billed each billed entry: its project's invoice covering the spent day
billing_invoice as (

    select time_entry_id, invoice_key, invoiced_at
    from (
        select
            time_entries.time_entry_id,
            invoices.invoice_key,
            invoices.stripe_finalized_at as invoiced_at,
            row_number() over (
                partition by time_entries.time_entry_id
                order by invoices.stripe_finalized_at, invoices.invoice_key
            ) as preference
        from time_entries
        inner join invoices
            on time_entries.project_code = invoices.project_code
        inner join stripe_invoices
            on invoices.stripe_invoice_id = stripe_invoices.invoice_id
        where cast(stripe_invoices.period_start_at as date) <= time_entries.spent_date
          and cast(stripe_invoices.period_end_at as date) >= time_entries.spent_date
    ) as ranked
    where preference = 1

),

timed as (

    select
        time_entries.*,
        coalesce(contracts.legal_entity_id, customers.legal_entity_id) as legal_entity_id,
        legal_entities.currency_code as functional_currency_code,
        billing_invoice.invoice_key,
        case when not time_entries.is_billed then time_entries.updated_at end as approved_at,
        cast({{ dbt.dateadd('month', 1, 'time_entries.spent_month') }} as timestamp) as period_closed_at,
        billing_invoice.invoiced_at
    from time_entries
    left join contracts
        on time_entries.sale_order_id = contracts.sale_order_id
    left join customers
        on time_entries.customer_id = customers.customer_id
    left join legal_entities
        on coalesce(contracts.legal_entity_id, customers.legal_entity_id) = legal_entities.company_id
    left join billing_invoice
        on time_entries.time_entry_id = billing_invoice.time_entry_id

),

ready as (

    select
        timed.*,
        case
            when approved_at is not null and approved_at > period_closed_at then approved_at
            else period_closed_at
        end as ready_at
    from timed

)

select
    -- ids
    time_entry_id,
    project_id,
    project_code,
    customer_id,
    legal_entity_id,
    invoice_key,

    -- strings
    currency_code,
    functional_currency_code,

    -- numerics
    hours,
    billable_value,
    {{ concord.convert_currency('billable_value', 'currency_code', 'functional_currency_code', 'spent_date') }}
        as billable_value_functional,
    billable_value_reporting,
    case
        when invoiced_at is not null
            then cast(greatest({{ dbt.datediff('ready_at', 'invoiced_at', 'hour') }}, 0) / 24.0 as decimal(10, 2))
    end as readiness_latency_days,
    case
        when invoiced_at is null and ready_at <= {{ as_of() }}
            then cast(greatest({{ dbt.datediff('ready_at', as_of(), 'hour') }}, 0) / 24.0 as decimal(10, 2))
    end as waiting_days,

    -- booleans
    invoiced_at is not null as is_invoiced,
    ready_at <= {{ as_of() }} as is_ready,

    -- dates
    spent_date,
    spent_month,
    cast({{ dbt.date_trunc('month', 'invoiced_at') }} as date) as invoiced_month,

    -- timestamps
    approved_at,
    ready_at,
    invoiced_at

from ready
