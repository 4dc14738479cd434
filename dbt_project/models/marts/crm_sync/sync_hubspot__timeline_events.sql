-- What reverse ETL writes on HubSpot company timelines: one row per business event, each to
-- become exactly one note associated with the client's HubSpot company. `event_key` (event type
-- and the record the event is about) is what makes the note unique: reverse ETL stamps it on
-- the note (`concord_event_key`) and never writes a second note for it.
--
--   invoice_issued    an invoice was issued: a finalised Stripe invoice, or a ledger-only ERP
--                     invoice (the receivables' definition), not void by the as-of moment;
--                     at its finalisation (ERP: accounting date).
--   payment_received  a succeeded Stripe charge, or an ERP payment no charge explains (a bank
--                     transfer billing never saw); at the charge (ERP: payment date). A payment
--                     both systems record is one event, keyed by the charge.
--   dispute_opened    a Stripe dispute (inquiries included); at its creation.
--   invoice_overdue   an invoice still owed when its due date passed (the first moment of the
--                     day after the due date), once the as-of moment has reached that moment;
--                     an invoice paid later still went overdue once. At that moment.
--
-- Only events of the last `timeline_events_lookback_days` (30, a var() default) before the
-- as-of moment are listed: a first push announces the last month, not years of history.
-- The client's note goes on its earliest-created live HubSpot company (the identity anchor when
-- it is live), never on a duplicate too. Rules and note texts: DECISIONLOG.md, "Timeline notes".
{%- set lookback_days = var('timeline_events_lookback_days', 30) %}
with

receivables as (

    select * from {{ ref('int_receivables') }}

),

invoices as (

    select invoice_key, erp_move_name from {{ ref('invoices') }}

),

payments as (

    select * from {{ ref('payments') }}

),

disputes as (

    select * from {{ ref('stg_stripe__disputes') }}

),

charges as (

    select charge_id, customer_id, invoice_id from {{ ref('stg_stripe__charges') }}

),

customer_records as (

    select * from {{ ref('int_customer_records') }}

),

synced_companies as (

    select hubspot_company_id from {{ ref('sync_hubspot__companies') }}

),

-- the company a client's notes go on: its earliest-created live HubSpot company
note_companies as (

    select customer_id, hubspot_company_id
    from (
        select
            customer_records.customer_id,
            customer_records.record_id as hubspot_company_id,
            row_number() over (
                partition by customer_records.customer_id
                order by customer_records.created_at, customer_records.record_id
            ) as company_rank
        from customer_records
        inner join synced_companies
            on customer_records.record_id = synced_companies.hubspot_company_id
        where customer_records.system = 'hubspot'
          and customer_records.customer_id is not null
    ) as ranked
    where company_rank = 1

),

invoice_documents as (

    select
        receivables.*,
        coalesce(receivables.invoice_number, invoices.erp_move_name) as document_number,
        case
            when receivables.source_system = 'stripe' then receivables.stripe_invoice_id
            else 'erp_move_' || cast(receivables.erp_move_id as {{ dbt.type_string() }})
        end as document_id,
        case
            when receivables.source_system = 'stripe' then 'Stripe invoice ' || receivables.stripe_invoice_id
            else 'ERP invoice ' || coalesce(invoices.erp_move_name, cast(receivables.erp_move_id as {{ dbt.type_string() }}))
        end as source_reference,
        cast({{ dbt.dateadd('day', 1, 'receivables.due_date') }} as timestamp) as overdue_at
    from receivables
    left join invoices
        on receivables.invoice_key = invoices.invoice_key

),

invoice_issued as (

    select
        'invoice_issued:' || document_id as event_key,
        'invoice_issued' as event_type,
        customer_id,
        issued_at as occurred_at,
        source_system,
        document_id as source_record_id,
        amount_total as amount,
        currency_code,
        'Invoice ' || coalesce(document_number, document_id) || ' issued: '
            || currency_code || ' ' || cast(cast(amount_total as decimal(18, 2)) as {{ dbt.type_string() }})
            || coalesce(', due ' || cast(due_date as {{ dbt.type_string() }}), '')
            || coalesce(', project ' || project_code, '')
            || '. Source: ' || source_reference || '.' as note_body
    from invoice_documents
    where issued_at is not null
      and not (voided_at is not null and voided_at <= {{ as_of() }})

),

invoice_overdue as (

    select
        'invoice_overdue:' || document_id as event_key,
        'invoice_overdue' as event_type,
        customer_id,
        overdue_at as occurred_at,
        source_system,
        document_id as source_record_id,
        cast(amount_total - credited_amount as decimal(18, 2)) as amount,
        currency_code,
        'Invoice ' || coalesce(document_number, document_id) || ' is overdue: '
            || currency_code || ' ' || cast(cast(amount_total - credited_amount as decimal(18, 2)) as {{ dbt.type_string() }})
            || ' was due on ' || cast(due_date as {{ dbt.type_string() }}) || ' and not paid by then'
            || '. Source: ' || source_reference || '.' as note_body
    from invoice_documents
    where due_date is not null
      and amount_total - credited_amount > {{ var('amount_tolerance') }}
      and (settled_at is null or settled_at >= overdue_at)
      and (issued_at is null or issued_at < overdue_at)

),

payment_received as (

    select
        'payment_received:' || case
            when payments.stripe_is_succeeded then payments.stripe_charge_id
            else 'erp_payment_' || cast(payments.erp_payment_id as {{ dbt.type_string() }})
        end as event_key,
        'payment_received' as event_type,
        payments.customer_id,
        case
            when payments.stripe_is_succeeded then payments.stripe_created_at
            else cast(payments.erp_payment_date as timestamp)
        end as occurred_at,
        case when payments.stripe_is_succeeded then 'stripe' else 'erp' end as source_system,
        case
            when payments.stripe_is_succeeded then payments.stripe_charge_id
            else 'erp_payment_' || cast(payments.erp_payment_id as {{ dbt.type_string() }})
        end as source_record_id,
        case when payments.stripe_is_succeeded then payments.stripe_amount else payments.erp_amount end as amount,
        case when payments.stripe_is_succeeded then payments.stripe_currency_code else payments.erp_currency_code end
            as currency_code,
        'Payment received: '
            || case when payments.stripe_is_succeeded then payments.stripe_currency_code else payments.erp_currency_code end
            || ' ' || cast(cast(case when payments.stripe_is_succeeded then payments.stripe_amount else payments.erp_amount end
                               as decimal(18, 2)) as {{ dbt.type_string() }})
            || case
                when payments.stripe_is_succeeded
                    then coalesce(' by ' || replace(payments.stripe_payment_method_type, '_', ' '), '')
                else ' by bank transfer'
            end
            || coalesce(' for invoice ' || invoice_documents.document_number, '')
            || '. Source: '
            || case
                when payments.stripe_is_succeeded then 'Stripe charge ' || payments.stripe_charge_id
                else 'ERP payment ' || coalesce(payments.erp_payment_name, cast(payments.erp_payment_id as {{ dbt.type_string() }}))
            end || '.' as note_body
    from payments
    left join invoice_documents
        on payments.invoice_key = invoice_documents.invoice_key
    where payments.stripe_is_succeeded
       or (payments.has_erp
           and not payments.has_stripe
           and payments.erp_state not in ('draft', 'cancel', 'canceled', 'rejected'))

),

dispute_opened as (

    select
        'dispute_opened:' || disputes.dispute_id as event_key,
        'dispute_opened' as event_type,
        customer_records.customer_id,
        disputes.created_at as occurred_at,
        'stripe' as source_system,
        disputes.dispute_id as source_record_id,
        disputes.amount,
        disputes.currency_code,
        'Dispute opened: ' || disputes.currency_code || ' '
            || cast(cast(disputes.amount as decimal(18, 2)) as {{ dbt.type_string() }})
            || coalesce(' on the payment for invoice ' || invoice_documents.document_number, ' on a card payment')
            || coalesce(', reason: ' || replace(disputes.reason, '_', ' '), '')
            || coalesce('. Evidence due by ' || cast(cast(disputes.evidence_due_at as date) as {{ dbt.type_string() }}), '')
            || '. Source: Stripe dispute ' || disputes.dispute_id || '.' as note_body
    from disputes
    inner join charges
        on disputes.charge_id = charges.charge_id
    left join customer_records
        on customer_records.record_key = 'stripe:' || charges.customer_id
    left join invoice_documents
        on invoice_documents.stripe_invoice_id = charges.invoice_id

),

events as (

    select * from invoice_issued
    union all
    select * from invoice_overdue
    union all
    select * from payment_received
    union all
    select * from dispute_opened

),

final as (

    select
        events.event_key,
        events.event_type,
        note_companies.hubspot_company_id,
        events.occurred_at,
        events.note_body,
        events.customer_id,
        events.source_system,
        events.source_record_id,
        events.amount,
        events.currency_code
    from events
    inner join note_companies
        on events.customer_id = note_companies.customer_id
    where events.occurred_at <= {{ as_of() }}
      and events.occurred_at > {{ dbt.dateadd('day', -1 * lookback_days, as_of()) }}

)

select
    cast(event_key as {{ dbt.type_string() }}) as event_key,
    cast(event_type as {{ dbt.type_string() }}) as event_type,
    cast(hubspot_company_id as {{ dbt.type_string() }}) as hubspot_company_id,
    cast(occurred_at as timestamp) as occurred_at,
    cast(note_body as {{ dbt.type_string() }}) as note_body,
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(source_system as {{ dbt.type_string() }}) as source_system,
    cast(source_record_id as {{ dbt.type_string() }}) as source_record_id,
    cast(amount as decimal(18, 2)) as amount,
    cast(currency_code as {{ dbt.type_string() }}) as currency_code
from final
