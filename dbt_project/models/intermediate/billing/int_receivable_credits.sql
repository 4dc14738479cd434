-- One row per credit note or part payment that reduces what a receivable (`int_receivables`) is
-- owed, with when it was issued or received: Stripe credit notes (not voided) of billing
-- invoices, the ERP's posted refunds (`out_refund`) of ledger-only invoices, and the payments
-- the ERP ledger applied to any receivable. Per invoice the credit notes sum to
-- `int_receivables.credited_amount` and the payments to its `ledger_paid_amount`; their dates let
-- the AR metrics state balances at any past month end.
with

receivables as (

    select invoice_key, source_system, stripe_invoice_id, erp_move_id from {{ ref('int_receivables') }}

),

payments as (

    select * from {{ ref('payments') }}

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

    union all

    select
        receivables.invoice_key,
        'erp_payment' as source_system,
        cast(payments.erp_payment_id as {{ dbt.type_string() }}) as credit_id,
        cast(payments.erp_payment_date as timestamp) as credited_at,
        payments.erp_amount as amount
    from receivables
    inner join payments
        on receivables.invoice_key = payments.invoice_key
    where payments.has_erp
      and payments.erp_is_applied
      and payments.erp_state not in ('draft', 'cancel', 'canceled', 'rejected')

)

select
    {{ concord.surrogate_key(['source_system', 'credit_id']) }} as receivable_credit_id,
    invoice_key,
    source_system,
    credit_id,
    cast(amount as decimal(18, 2)) as amount,
    credited_at
from credits
