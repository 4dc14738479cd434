"""What the Stripe source reads: its tables, the events that name their objects, and the
contract each record must keep."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ingestion.quarantine import Contract

API_VERSION = "2023-08-16"  # pinned: the shapes below, and dbt's staging models, assume it
PAGE_LIMIT = 100  # Stripe's maximum `limit`
CREDENTIALS_HINT = "SOURCES__STRIPE__API_KEY (a secret key, sk_..., for the account at SOURCES__STRIPE__BASE_URL)"


@dataclass(frozen=True)
class EventRef:
    """Events of type `pattern` (fnmatch wildcards) name an object of this table in their
    `data.object`: its own id when `field` is `id` (and the snapshot is of `object`), else
    the id in `field` (a plain id or an expanded object)."""

    pattern: str
    field: str = "id"
    object: str | None = None


@dataclass(frozen=True)
class Table:
    """One Stripe object type landed as one table (the resource of the same name).

    Attributes:
        name: Table and resource name.
        path: The list endpoint; `{path}/{id}` retrieves one object.
        contract: Fields every landed record must carry, with their kinds.
        follows: The events whose objects (or referenced objects) must be re-read.
        columns: Columns the table always has, with their dlt data types, whether or not a
            load has seen a value for them: what dbt's staging models may rely on.
        json_columns: Top-level fields landed as JSON rather than child tables or
            `parent__child` columns (free-form metadata and rarely used lists).
        has_lines: The object embeds a list object `lines` (first ten lines, `has_more`);
            it is landed with every line as the nested list `lines` (child table
            `<name>__lines`).
        line_columns: As `columns`, for the lines.
        keeps_deleted: An object deleted since the last run still matters (other objects name
            it): it lands as its deletion event shows it, with `deleted = true`.
    """

    name: str
    path: str
    contract: Contract
    follows: tuple[EventRef, ...]
    columns: Mapping[str, str]
    json_columns: tuple[str, ...] = ("metadata",)
    has_lines: bool = False
    line_columns: Mapping[str, str] = field(default_factory=dict)
    keeps_deleted: bool = False


_BASE = {"id": "id", "created": "epoch"}
_T, _I, _B = "text", "bigint", "bool"
_COMMON = {"id": _T, "object": _T, "created": _I, "livemode": _B}
LINE_CONTRACT = Contract("lines", {"id": "id", "amount": "int"}, {"currency": "currency"})

TABLES: tuple[Table, ...] = (
    Table(
        "customers", "/v1/customers",
        Contract("customers", _BASE, {"currency": "currency", "balance": "int"}),
        follows=(
            EventRef("customer.*", object="customer"),
            EventRef("customer.discount.*", "customer"),
            EventRef("customer.source.*", "customer"),
            EventRef("customer.tax_id.*", "customer"),
            # finalizing an invoice moves the customer's `next_invoice_sequence` without a
            # customer event
            EventRef("invoice.finalized", "customer"),
        ),
        columns={**_COMMON, "name": _T, "email": _T, "phone": _T, "description": _T, "currency": _T,
                 "balance": _I, "delinquent": _B, "invoice_prefix": _T, "next_invoice_sequence": _I,
                 "tax_exempt": _T, "address__line1": _T, "address__line2": _T, "address__city": _T,
                 "address__postal_code": _T, "address__state": _T, "address__country": _T, "deleted": _B},
        json_columns=("metadata", "preferred_locales", "invoice_settings"),
        keeps_deleted=True,
    ),
    Table(
        "invoices", "/v1/invoices",
        Contract("invoices",
                 {**_BASE, "currency": "currency", "customer": "id", "total": "int", "amount_due": "int",
                  "amount_paid": "int", "amount_remaining": "int"},
                 {"due_date": "epoch", "status_transitions.finalized_at": "epoch",
                  "status_transitions.paid_at": "epoch", "status_transitions.voided_at": "epoch",
                  "status_transitions.marked_uncollectible_at": "epoch"}),
        follows=(EventRef("invoice.*", object="invoice"),),
        columns={**_COMMON, "number": _T, "customer": _T, "customer_name": _T, "customer_email": _T,
                 "status": _T, "currency": _T, "collection_method": _T, "billing_reason": _T,
                 "description": _T, "subtotal": _I, "total": _I, "tax": _I, "amount_due": _I,
                 "amount_paid": _I, "amount_remaining": _I, "starting_balance": _I, "ending_balance": _I,
                 "pre_payment_credit_notes_amount": _I, "post_payment_credit_notes_amount": _I,
                 "paid": _B, "paid_out_of_band": _B, "charge": _T, "payment_intent": _T, "subscription": _T,
                 "due_date": _I, "effective_at": _I, "period_start": _I, "period_end": _I,
                 "status_transitions__finalized_at": _I, "status_transitions__paid_at": _I,
                 "status_transitions__voided_at": _I, "status_transitions__marked_uncollectible_at": _I,
                 "hosted_invoice_url": _T},
        json_columns=("metadata", "account_tax_ids", "customer_tax_ids", "default_tax_rates", "discounts",
                      "total_discount_amounts", "total_tax_amounts", "custom_fields"),
        has_lines=True,
        line_columns={"id": _T, "object": _T, "type": _T, "invoice_item": _T, "subscription": _T,
                      "description": _T, "currency": _T, "amount": _I, "amount_excluding_tax": _I,
                      "quantity": _I, "period": "json", "price": "json", "metadata": "json"},
    ),
    Table(
        "charges", "/v1/charges",
        Contract("charges", {**_BASE, "currency": "currency", "amount": "int", "amount_refunded": "int"},
                 {"amount_captured": "int"}),
        follows=(
            EventRef("charge.*", object="charge"),
            EventRef("charge.dispute.*", "charge"),  # a dispute flips its charge's `disputed`
            EventRef("charge.refund.*", "charge"),
        ),
        columns={**_COMMON, "customer": _T, "invoice": _T, "payment_intent": _T, "status": _T,
                 "currency": _T, "amount": _I, "amount_captured": _I, "amount_refunded": _I, "paid": _B,
                 "captured": _B, "refunded": _B, "disputed": _B, "description": _T, "failure_code": _T,
                 "failure_message": _T, "receipt_email": _T, "payment_method": _T,
                 "payment_method_details__type": _T, "billing_details__name": _T,
                 "billing_details__email": _T, "balance_transaction": _T},
        json_columns=("metadata", "fraud_details", "refunds"),
    ),
    Table(
        "credit_notes", "/v1/credit_notes",
        Contract("credit_notes", {**_BASE, "currency": "currency", "invoice": "id", "amount": "int",
                                  "total": "int"}),
        follows=(EventRef("credit_note.*", object="credit_note"),),
        columns={**_COMMON, "number": _T, "invoice": _T, "customer": _T, "type": _T, "status": _T,
                 "reason": _T, "memo": _T, "currency": _T, "amount": _I, "subtotal": _I, "total": _I,
                 "discount_amount": _I, "out_of_band_amount": _I, "refund": _T,
                 "customer_balance_transaction": _T, "effective_at": _I, "voided_at": _I},
        json_columns=("metadata", "discount_amounts", "tax_amounts"),
        has_lines=True,
        line_columns={"id": _T, "object": _T, "type": _T, "invoice_line_item": _T, "description": _T,
                      "amount": _I, "amount_excluding_tax": _I, "quantity": _I, "unit_amount": _I,
                      "discount_amount": _I},
    ),
    Table(
        "disputes", "/v1/disputes",
        Contract("disputes", {**_BASE, "currency": "currency", "charge": "id", "amount": "int"},
                 {"evidence_details.due_by": "epoch"}),
        follows=(EventRef("charge.dispute.*", object="dispute"),),
        columns={**_COMMON, "charge": _T, "payment_intent": _T, "status": _T, "reason": _T,
                 "currency": _T, "amount": _I, "is_charge_refundable": _B,
                 "evidence_details__due_by": _I, "evidence_details__has_evidence": _B,
                 "evidence_details__submission_count": _I},
        json_columns=("metadata", "balance_transactions", "evidence"),
    ),
)
TABLE_NAMES = tuple(table.name for table in TABLES)
