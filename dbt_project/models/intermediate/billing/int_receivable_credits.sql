-- One row per credit note that reduces what a receivable (`int_receivables`) is owed, with when
-- it was issued: Stripe credit notes (not voided) of billing invoices, and the ERP's posted
-- refunds (`out_refund`) of ledger-only invoices. Their sum per invoice is
-- `int_receivables.credited_amount`; their dates let the AR metrics state balances at any
-- past month end.
with

receivables as (

    select invoice_key, source_system, stripe_invoice_id, erp_move_id from {{ ref('int_receivables') }}

),

credit_notes as (

    select * from {{ ref('stg_stripe__credit_notes') }}

),

account_moves as (

    select * from {{ ref('stg_erp__account_moves') }}

),

credits as (

    select
        receivables.invoice_key,
        'stripe' as source_system,
        credit_notes.credit_note_id as credit_id,
        credit_notes.created_at as credited_at,
        credit_notes.total as amount
    from receivables
    inner join credit_notes
        on receivables.stripe_invoice_id = credit_notes.invoice_id
    where receivables.source_system = 'stripe'
      and credit_notes.status <> 'void'

    union all

    select
        receivables.invoice_key,
        'erp' as source_system,
        cast(account_moves.move_id as {{ dbt.type_string() }}) as credit_id,
        cast(account_moves.accounting_date as timestamp) as credited_at,
        account_moves.amount_total as amount
    from receivables
    inner join account_moves
        on receivables.erp_move_id = account_moves.reversed_entry_id
    where receivables.source_system = 'erp'
      and account_moves.move_type = 'out_refund'
      and account_moves.state = 'posted'

)

select
    {{ concord.surrogate_key(['source_system', 'credit_id']) }} as receivable_credit_id,
    invoice_key,
    source_system,
    credit_id,
    cast(amount as decimal(18, 2)) as amount,
    credited_at
from credits
