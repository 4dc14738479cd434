"""Stripe objects in the API version 2023-08-16 shape, and how the sandbox stores them.

The builders turn plain values (ids, integer minor units, epoch seconds, lowercase currency
codes, metadata dicts) into the exact dicts Stripe returns, so the data generator and the
sandbox API produce the same shapes without knowing the vendor's field list. Each builder
starts from a shallow copy of a template taken from Stripe's own fixtures (`fixtures3` at
the spec commit of 2023-09-12) and fills every nested object with a fresh dict, so documents
never share mutable parts and building ~150k invoices costs no deep copies.

The store helpers write documents into the `stripe_*` tables of `sandbox.store`: the derived
columns the API filters on, `seq` for stable newest-first ordering, and every line of an
invoice or credit note (the document itself embeds only the first ten, as Stripe does).
Credit note lines share `stripe_invoice_lines` with invoice lines, keyed by the `cn_...` id.
"""

from __future__ import annotations

import hashlib
import sqlite3
import string
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import orjson

from sandbox import store

API_VERSION = "2023-08-16"
EMBEDDED_LINES = 10  # list objects embedded in an invoice or credit note hold this many lines
ACCOUNT = "acct_1ConcordSandbx"
ACCOUNT_NAME = "Concord Sandbox"

_FIXTURES = (Path(__file__).parent / "vendor_specs" / "stripe" / "fixtures"
             / "fixtures3_2023-09-12_subset.json")
_BASE62 = string.digits + string.ascii_letters
_BYTE_TO_BASE62 = bytes(ord(_BASE62[i % 62]) for i in range(256))
_ID_LENGTH = {"cus": 14}  # Stripe's customer ids are shorter than the others

# Default payment rails by currency: how a firm's clients usually pay an invoice.
BANK_METHOD_BY_CURRENCY = {"usd": "us_bank_account", "eur": "sepa_debit", "gbp": "bacs_debit"}


def _templates(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Top-level skeletons from the fixtures: `id` and `object` first, nested values unset."""
    out = {}
    for name, fixture in resources.items():
        skeleton: dict[str, Any] = {"id": None, "object": fixture.get("object", name)}
        for key, value in fixture.items():
            if key not in skeleton:
                skeleton[key] = None if isinstance(value, (dict, list)) else value
        out[name] = skeleton
    out["charge"].pop("refunds")  # not returned unless expanded since API version 2022-11-15
    return out


_FIXTURE_RESOURCES = orjson.loads(_FIXTURES.read_bytes())["resources"]
_T = _templates(_FIXTURE_RESOURCES)
_EVIDENCE_KEYS = tuple(_FIXTURE_RESOURCES["dispute"]["evidence"])


def stripe_id(prefix: str, *key: object) -> str:
    """A deterministic Stripe-style id: `prefix_` plus base62 characters hashed from `key`.

    Args:
        prefix: Object prefix such as `cus`, `in`, `il`, `ii`, `ch`, `cn`, `cnli`, `du`,
            `evt`, `pi` (a trailing underscore is accepted).
        *key: Values that identify the object; the same key always gives the same id.

    Returns:
        E.g. `in_3kTq...` (24 characters after the prefix; 14 for customers).
    """
    prefix = prefix.rstrip("_")
    material = "\x1f".join(map(str, key)).encode()
    digest = hashlib.blake2b(material, digest_size=_ID_LENGTH.get(prefix, 24),
                             person=prefix.encode()[:16]).digest()
    return f"{prefix}_{digest.translate(_BYTE_TO_BASE62).decode('ascii')}"


def _token(*key: object, length: int = 16) -> str:
    """Deterministic alphanumerics for fingerprints and URL tokens."""
    digest = hashlib.blake2b("\x1f".join(map(str, key)).encode(), digest_size=length).digest()
    return digest.translate(_BYTE_TO_BASE62).decode("ascii")


def _digits(seed: str, count: int) -> str:
    return str(int(hashlib.blake2b(seed.encode(), digest_size=8).hexdigest(), 16))[-count:].zfill(count)


def _decimal(value: Decimal | int) -> str:
    return format(Decimal(value).normalize(), "f")


def _address(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {key: value.get(key) for key in ("city", "country", "line1", "line2", "postal_code", "state")}


def _list(items: Sequence[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": list(items[:EMBEDDED_LINES]),
            "has_more": len(items) > EMBEDDED_LINES, "url": url}


# --- customers ---------------------------------------------------------------------------

def customer(*, id: str, created: int, name: str | None = None, email: str | None = None,
             currency: str | None = None, metadata: Mapping[str, str] | None = None,
             description: str | None = None, phone: str | None = None,
             address: Mapping[str, Any] | None = None, invoice_prefix: str | None = None,
             next_invoice_sequence: int = 1, balance: int = 0,
             preferred_locales: Sequence[str] = (), tax_exempt: str = "none",
             delinquent: bool = False, livemode: bool = False) -> dict[str, Any]:
    """A customer object.

    Args:
        id: `cus_...` id.
        created: Epoch seconds.
        currency: Lowercase ISO code once the customer has been invoiced, else None.
        invoice_prefix: Prefix of the customer's invoice numbers; derived from the id if None.
        next_invoice_sequence: Sequence the next finalized invoice's number will carry.
        balance: Customer balance in minor units (negative = credit owed to the customer).

    Returns:
        The customer dict as `GET /v1/customers/{id}` returns it.
    """
    doc = _T["customer"].copy()
    doc.update(
        id=id, created=created, name=name, email=email, currency=currency,
        description=description, phone=phone, address=_address(address), balance=balance,
        invoice_prefix=invoice_prefix or hashlib.md5(id.encode()).hexdigest()[:8].upper(),
        next_invoice_sequence=next_invoice_sequence, tax_exempt=tax_exempt,
        delinquent=delinquent, livemode=livemode, metadata=dict(metadata or {}),
        preferred_locales=list(preferred_locales),
        invoice_settings={"custom_fields": None, "default_payment_method": None,
                          "footer": None, "rendering_options": None},
    )
    return doc


# --- tax rates ---------------------------------------------------------------------------

def tax_rate(*, id: str, created: int, display_name: str, percentage: Decimal, inclusive: bool = False,
             country: str | None = None, jurisdiction: str | None = None, description: str | None = None,
             tax_type: str | None = None, metadata: Mapping[str, str] | None = None,
             livemode: bool = False) -> dict[str, Any]:
    """A tax rate (`txr_...`) a firm creates by hand and applies to invoice items; `percentage`
    is out of 100."""
    doc = _T["tax_rate"].copy()
    doc.update(id=id, created=created, display_name=display_name, percentage=float(percentage),
               inclusive=inclusive, country=country, jurisdiction=jurisdiction, description=description,
               tax_type=tax_type, metadata=dict(metadata or {}), livemode=livemode, active=True,
               effective_percentage=None, state=None)
    return doc


def tax_on_rate(amount: int, rate: Mapping[str, Any]) -> dict[str, Any]:
    """The `tax_amounts` entry an exclusive tax rate adds to a line of `amount` (minor units),
    rounded half up to the minor unit."""
    tax = (Decimal(amount) * Decimal(str(rate["percentage"])) / 100).quantize(Decimal(1), ROUND_HALF_UP)
    return tax_amount(amount=int(tax), taxable_amount=amount, tax_rate=rate["id"], taxability_reason=None)


# --- invoice items and invoice lines -------------------------------------------------------

def _price(*, id: str, product: str, currency: str, unit_amount: int, unit_decimal: str,
           created: int, livemode: bool) -> dict[str, Any]:
    return {
        "id": id, "object": "price", "active": False, "billing_scheme": "per_unit",
        "created": created, "currency": currency, "custom_unit_amount": None,
        "livemode": livemode, "lookup_key": None, "metadata": {}, "nickname": None,
        "product": product, "recurring": None, "tax_behavior": "unspecified",
        "tiers_mode": None, "transform_quantity": None, "type": "one_time",
        "unit_amount": unit_amount, "unit_amount_decimal": unit_decimal,
    }


def _unit(amount: int, quantity: int, unit_amount: int | None) -> tuple[int, str]:
    if unit_amount is not None:
        return unit_amount, str(unit_amount)
    if quantity and amount % quantity == 0:
        return amount // quantity, str(amount // quantity)
    exact = Decimal(amount) / Decimal(quantity or 1)
    return int(exact), _decimal(exact)


def invoiceitem(*, id: str, customer: str, amount: int, currency: str, date: int,
                description: str | None = None, invoice: str | None = None,
                period_start: int | None = None, period_end: int | None = None,
                quantity: int = 1, unit_amount: int | None = None,
                metadata: Mapping[str, str] | None = None, price_id: str | None = None,
                product_id: str | None = None, livemode: bool = False) -> dict[str, Any]:
    """An invoice item (`ii_...`): a charge added to a customer's next or given invoice.

    Args:
        amount: Total of the item in minor units (`quantity` x unit price).
        date: Epoch seconds the item was created.
        invoice: Draft invoice the item is attached to, or None while pending.
        period_start, period_end: Service period; default to `date`.
        price_id, product_id: Ids of the ad-hoc price Stripe creates; derived if None.
    """
    unit, unit_decimal = _unit(amount, quantity, unit_amount)
    doc = _T["invoiceitem"].copy()
    doc.update(
        id=id, customer=customer, amount=amount, currency=currency, date=date,
        description=description, invoice=invoice, quantity=quantity, unit_amount=unit,
        unit_amount_decimal=unit_decimal, livemode=livemode, metadata=dict(metadata or {}),
        discounts=[], tax_rates=[],
        period={"end": period_end if period_end is not None else date,
                "start": period_start if period_start is not None else date},
        price=_price(id=price_id or stripe_id("price", id), currency=currency, created=date,
                     product=product_id or stripe_id("prod", id), unit_amount=unit,
                     unit_decimal=unit_decimal, livemode=livemode),
    )
    return doc


def tax_amount(*, amount: int, taxable_amount: int, tax_rate: str, taxability_reason: str) -> dict[str, Any]:
    """One entry of a line's `tax_amounts` (exclusive tax, as a B2B invoice states it)."""
    return {"amount": amount, "inclusive": False, "tax_rate": tax_rate,
            "taxability_reason": taxability_reason, "taxable_amount": taxable_amount}


def line_item(*, id: str, invoice_item: str, amount: int, currency: str,
              period_start: int, period_end: int, description: str | None = None,
              quantity: int = 1, unit_amount: int | None = None,
              metadata: Mapping[str, str] | None = None, price_id: str | None = None,
              product_id: str | None = None, price_created: int | None = None,
              tax_amounts: Sequence[dict[str, Any]] = (), livemode: bool = False) -> dict[str, Any]:
    """An invoice line (`il_...`) of type `invoiceitem`, as listed in `invoice.lines`.
    `amount` excludes tax; `tax_amounts` (`tax_amount` dicts) add to the invoice's total."""
    unit, unit_decimal = _unit(amount, quantity, unit_amount)
    doc = _T["line_item"].copy()
    doc.update(
        id=id, invoice_item=invoice_item, amount=amount, amount_excluding_tax=amount,
        currency=currency, description=description, quantity=quantity,
        unit_amount_excluding_tax=unit_decimal, livemode=livemode,
        metadata=dict(metadata or {}), discount_amounts=[], discounts=[], tax_amounts=list(tax_amounts),
        tax_rates=[], period={"end": period_end, "start": period_start},
        proration_details={"credited_items": None},
        price=_price(id=price_id or stripe_id("price", invoice_item), currency=currency,
                     product=product_id or stripe_id("prod", invoice_item), unit_amount=unit,
                     unit_decimal=unit_decimal, livemode=livemode,
                     created=price_created if price_created is not None else period_start),
    )
    return doc


def line_from_invoiceitem(item: Mapping[str, Any]) -> dict[str, Any]:
    """The invoice line Stripe shows for an invoice item once it is on an invoice, taxed at the
    item's tax rates."""
    rates = item.get("tax_rates") or []
    line = line_item(
        id=stripe_id("il", item["id"]), invoice_item=item["id"], amount=item["amount"],
        currency=item["currency"], description=item["description"],
        period_start=item["period"]["start"], period_end=item["period"]["end"],
        quantity=item["quantity"], unit_amount=item["unit_amount"],
        metadata=item["metadata"], price_id=item["price"]["id"],
        product_id=item["price"]["product"], price_created=item["price"]["created"],
        livemode=item["livemode"], tax_amounts=[tax_on_rate(item["amount"], rate) for rate in rates],
    )
    line["tax_rates"] = list(rates)
    return line


# --- invoices ---------------------------------------------------------------------------

INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")


def invoice(*, id: str, customer: str, created: int, currency: str,
            lines: Sequence[dict[str, Any]], status: str = "draft", number: str | None = None,
            collection_method: str = "send_invoice", due_date: int | None = None,
            period_start: int | None = None, period_end: int | None = None,
            finalized_at: int | None = None, paid_at: int | None = None,
            voided_at: int | None = None, marked_uncollectible_at: int | None = None,
            amount_paid: int | None = None, pre_payment_credit_notes_amount: int = 0,
            post_payment_credit_notes_amount: int = 0, starting_balance: int = 0,
            paid_out_of_band: bool = False, charge: str | None = None,
            payment_intent: str | None = None, customer_name: str | None = None,
            customer_email: str | None = None, customer_address: Mapping[str, Any] | None = None,
            customer_phone: str | None = None, description: str | None = None,
            footer: str | None = None, metadata: Mapping[str, str] | None = None,
            auto_advance: bool = False, billing_reason: str = "manual",
            account_country: str = "US", account_name: str = ACCOUNT_NAME,
            livemode: bool = False) -> dict[str, Any]:
    """An invoice whose amounts, flags and timestamps agree with its status.

    Args:
        lines: Every line item of the invoice (`line_item` dicts); the document embeds the
            first ten. Pass the same list to `put_object(..., lines=...)` when it is longer.
        status: draft | open | paid | uncollectible | void.
        number: Required once finalized, e.g. `{customer.invoice_prefix}-0001`.
        finalized_at: Defaults to `created` for finalized invoices.
        paid_at: Defaults to `finalized_at` for paid invoices.
        amount_paid: Defaults to `amount_due` when paid, else 0.
        pre_payment_credit_notes_amount: Credited before payment; reduces `amount_due`.
        post_payment_credit_notes_amount: Credited after payment; leaves `amount_due` alone.
        charge, payment_intent: The charge that paid the invoice, if any.

    Returns:
        The invoice dict as `GET /v1/invoices/{id}` returns it.

    Raises:
        ValueError: For an unknown status or a finalized invoice without a number.
    """
    if status not in INVOICE_STATUSES:
        raise ValueError(f"invoice status must be one of {INVOICE_STATUSES}, not {status!r}")
    finalized = status != "draft"
    if finalized and not number:
        raise ValueError("a finalized invoice needs a number")
    if finalized and finalized_at is None:
        finalized_at = created
    if status == "paid" and paid_at is None:
        paid_at = finalized_at
    if status == "void" and voided_at is None:
        voided_at = finalized_at
    if status == "uncollectible" and marked_uncollectible_at is None:
        marked_uncollectible_at = finalized_at
    hosted_url, pdf_url = invoice_urls(id) if finalized else (None, None)
    doc = _T["invoice"].copy()
    doc.update(
        id=id, customer=customer, created=created, currency=currency, status=status,
        number=number if finalized else None, collection_method=collection_method,
        due_date=due_date, period_start=period_start if period_start is not None else created,
        period_end=period_end if period_end is not None else created,
        effective_at=finalized_at, paid=status == "paid", paid_out_of_band=paid_out_of_band,
        charge=charge, payment_intent=payment_intent, attempted=charge is not None,
        attempt_count=1 if charge is not None else 0, auto_advance=auto_advance,
        billing_reason=billing_reason, account_country=account_country,
        account_name=account_name, customer_name=customer_name,
        customer_email=customer_email, customer_address=_address(customer_address),
        customer_phone=customer_phone, description=description, footer=footer,
        starting_balance=starting_balance, ending_balance=None, livemode=livemode,
        next_payment_attempt=None, webhooks_delivered_at=created,
        pre_payment_credit_notes_amount=pre_payment_credit_notes_amount,
        post_payment_credit_notes_amount=post_payment_credit_notes_amount,
        hosted_invoice_url=hosted_url, invoice_pdf=pdf_url,
        metadata=dict(metadata or {}), automatic_tax={"enabled": False, "status": None},
        customer_tax_ids=[], default_tax_rates=[], discounts=[], total_discount_amounts=[],
        total_tax_amounts=[], subscription_details={"metadata": None},
        payment_settings={"default_mandate": None, "payment_method_options": None,
                          "payment_method_types": None},
        status_transitions={"finalized_at": finalized_at,
                            "marked_uncollectible_at": marked_uncollectible_at,
                            "paid_at": paid_at, "voided_at": voided_at},
    )
    set_invoice_lines(doc, lines)
    if amount_paid is None:
        amount_paid = doc["amount_due"] if status == "paid" else 0
    doc["amount_paid"] = amount_paid
    recompute_invoice(doc)
    return doc


def invoice_urls(invoice_id: str) -> tuple[str, str]:
    """The hosted invoice page and PDF links a finalized invoice carries."""
    token = _token(invoice_id, length=24)
    return (f"https://invoice.stripe.com/i/{ACCOUNT}/test_{token}",
            f"https://pay.stripe.com/invoice/{ACCOUNT}/test_{token}/pdf?s=ap")


def set_invoice_lines(doc: dict[str, Any], lines: Sequence[dict[str, Any]]) -> None:
    """Put `lines` (all of them) on an invoice document and update its totals: the subtotal
    is the lines' amounts, the tax their `tax_amounts` summed per tax rate."""
    doc["lines"] = _list(lines, f"/v1/invoices/{doc['id']}/lines")
    subtotal = sum(line["amount"] for line in lines)
    per_rate: dict[str, dict[str, Any]] = {}
    for line in lines:
        for entry in line.get("tax_amounts") or ():
            rate = per_rate.setdefault(entry["tax_rate"], {**entry, "amount": 0, "taxable_amount": 0})
            rate["amount"] += entry["amount"]
            rate["taxable_amount"] += entry["taxable_amount"] or 0
    tax = sum(rate["amount"] for rate in per_rate.values())
    doc.update(subtotal=subtotal, subtotal_excluding_tax=subtotal, total=subtotal + tax,
               total_excluding_tax=subtotal, tax=tax if per_rate else None,
               total_tax_amounts=list(per_rate.values()))
    recompute_invoice(doc)


def recompute_invoice(doc: dict[str, Any]) -> None:
    """Re-derive `amount_due`, `amount_remaining`, `ending_balance` and `paid` from the
    invoice's total, credit notes, starting balance, `amount_paid` and status."""
    total = doc["total"]
    due = max(0, total + doc["starting_balance"] - doc["pre_payment_credit_notes_amount"])
    paid = doc.get("amount_paid") or 0
    doc["amount_due"] = due
    doc["amount_paid"] = paid
    doc["amount_remaining"] = 0 if doc["status"] == "paid" else max(0, due - paid)
    doc["paid"] = doc["status"] == "paid"
    if doc["status"] == "draft":
        doc["ending_balance"] = None
    else:
        doc["ending_balance"] = min(0, total + doc["starting_balance"])


# --- charges --------------------------------------------------------------------------------

def _method_details(kind: str, seed: str) -> dict[str, Any]:
    fingerprint = _token(seed, "fingerprint", length=16)
    last4 = _digits(seed, 4)
    if kind == "us_bank_account":
        detail = {"account_holder_type": "company", "account_type": "checking",
                  "bank_name": "STRIPE TEST BANK", "fingerprint": fingerprint,
                  "last4": last4, "routing_number": "110000000"}
    elif kind == "sepa_debit":
        detail = {"bank_code": "37040044", "branch_code": None, "country": "DE",
                  "fingerprint": fingerprint, "last4": last4,
                  "mandate": stripe_id("mandate", seed)}
    elif kind == "bacs_debit":
        detail = {"fingerprint": fingerprint, "last4": last4,
                  "mandate": stripe_id("mandate", seed), "sort_code": "108800"}
    elif kind == "card":
        detail = {"brand": "visa", "checks": {"address_line1_check": None,
                                              "address_postal_code_check": None,
                                              "cvc_check": "pass"},
                  "country": "US", "exp_month": 1 + int(_digits(seed, 2)) % 12,
                  "exp_year": 2027 + int(_digits(seed, 1)) % 4, "fingerprint": fingerprint,
                  "funding": "credit", "installments": None, "last4": last4,
                  "mandate": None, "network": "visa", "network_token": {"used": False},
                  "three_d_secure": None, "wallet": None}
    else:
        raise ValueError(f"unsupported payment method type {kind!r}")
    return {kind: detail, "type": kind}


def _outcome(status: str, kind: str) -> dict[str, Any] | None:
    if status == "failed":
        return {"network_status": "declined_by_network", "reason": "generic_decline",
                "risk_level": "normal" if kind == "card" else "not_assessed",
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined"}
    outcome = {"network_status": "approved_by_network", "reason": None,
               "risk_level": "normal" if kind == "card" else "not_assessed",
               "seller_message": "Payment complete.", "type": "authorized"}
    if kind == "card":
        outcome["risk_score"] = 12
    return outcome


def charge(*, id: str, customer: str | None, amount: int, currency: str, created: int,
           invoice: str | None = None, payment_intent: str | None = None,
           payment_method_type: str | None = None, description: str | None = None,
           billing_name: str | None = None, billing_email: str | None = None,
           metadata: Mapping[str, str] | None = None, status: str = "succeeded",
           amount_refunded: int = 0, disputed: bool = False,
           receipt_email: str | None = None, statement_descriptor: str | None = None,
           failure_code: str | None = None, failure_message: str | None = None,
           livemode: bool = False) -> dict[str, Any]:
    """A charge, by default a successful bank debit in the currency's usual rail.

    Args:
        payment_method_type: us_bank_account | sepa_debit | bacs_debit | card; by default
            `BANK_METHOD_BY_CURRENCY[currency]`, or card for other currencies.
        status: succeeded | pending | failed.
        amount_refunded: Refunded so far; `refunded` is true once it equals `amount`.
    """
    kind = payment_method_type or BANK_METHOD_BY_CURRENCY.get(currency, "card")
    ok = status != "failed"
    doc = _T["charge"].copy()
    doc.update(
        id=id, customer=customer, amount=amount, currency=currency, created=created,
        invoice=invoice, payment_intent=payment_intent, description=description,
        status=status, paid=status == "succeeded", captured=ok,
        amount_captured=amount if ok else 0, amount_refunded=amount_refunded,
        refunded=amount_refunded >= amount > 0, disputed=disputed,
        receipt_email=receipt_email, statement_descriptor=statement_descriptor,
        calculated_statement_descriptor=(statement_descriptor or ACCOUNT_NAME).upper()[:22],
        failure_code=failure_code if not ok else None,
        failure_message=failure_message if not ok else None, livemode=livemode,
        balance_transaction=stripe_id("txn", id) if ok else None,
        payment_method=stripe_id("pm", customer or id, kind), metadata=dict(metadata or {}),
        billing_details={"address": {"city": None, "country": None, "line1": None,
                                     "line2": None, "postal_code": None, "state": None},
                         "email": billing_email, "name": billing_name, "phone": None},
        fraud_details={}, outcome=_outcome(status, kind),
        payment_method_details=_method_details(kind, customer or id),
        receipt_url=f"https://pay.stripe.com/receipts/payment/{_token(id, 'receipt', length=48)}",
    )
    return doc


# --- credit notes ------------------------------------------------------------------------

def credit_note_line_item(*, id: str, amount: int, description: str | None = None,
                          invoice_line_item: str | None = None, quantity: int = 1,
                          unit_amount: int | None = None, type: str | None = None,
                          tax_amounts: Sequence[dict[str, Any]] = (), livemode: bool = False) -> dict[str, Any]:
    """A credit note line (`cnli_...`): part of an invoice line, or a custom amount.

    Args:
        invoice_line_item: The `il_...` line credited; None makes a `custom_line_item`.
        type: invoice_line_item | custom_line_item; inferred from `invoice_line_item`.
    """
    kind = type or ("invoice_line_item" if invoice_line_item else "custom_line_item")
    doc = _T["credit_note_line_item"].copy()
    custom = kind == "custom_line_item"
    unit = unit_amount if unit_amount is not None else (amount // quantity if quantity else amount)
    doc.update(
        id=id, amount=amount, amount_excluding_tax=amount, description=description,
        discount_amount=0, quantity=quantity, type=kind, livemode=livemode,
        unit_amount=unit if custom else None, unit_amount_decimal=str(unit) if custom else None,
        unit_amount_excluding_tax=str(unit if custom else amount),
        discount_amounts=[], tax_amounts=list(tax_amounts), tax_rates=[],
    )
    if custom:
        doc.pop("invoice_line_item", None)
    else:
        doc["invoice_line_item"] = invoice_line_item
    return doc


def credit_note(*, id: str, invoice: str, customer: str, currency: str, created: int,
                number: str, lines: Sequence[dict[str, Any]], type: str = "pre_payment",
                status: str = "issued", voided_at: int | None = None,
                reason: str | None = None, memo: str | None = None,
                metadata: Mapping[str, str] | None = None,
                out_of_band_amount: int | None = None, refund: str | None = None,
                customer_balance_transaction: str | None = None,
                effective_at: int | None = None, tax_amounts: Sequence[dict[str, Any]] = (),
                livemode: bool = False) -> dict[str, Any]:
    """A credit note; its amount is the sum of `lines` plus the tax credited (`tax_amounts`,
    carried by its lines too).

    Args:
        number: `{invoice.number}-CN-01`, `-CN-02`, ... per invoice.
        lines: Every `credit_note_line_item`; the document embeds the first ten.
        type: pre_payment (invoice unpaid: reduces its amount due) | post_payment.
        status: issued | void.
        reason: duplicate | fraudulent | order_change | product_unsatisfactory | None.
    """
    subtotal = sum(line["amount"] for line in lines)
    amount = subtotal + sum(entry["amount"] for entry in tax_amounts)
    doc = _T["credit_note"].copy()
    doc.update(
        id=id, invoice=invoice, customer=customer, currency=currency, created=created,
        number=number, type=type, status=status, reason=reason, memo=memo,
        voided_at=voided_at if status == "void" else None, amount=amount, amount_shipping=0,
        subtotal=subtotal, subtotal_excluding_tax=subtotal, total=amount,
        total_excluding_tax=subtotal, discount_amount=0, out_of_band_amount=out_of_band_amount,
        refund=refund, customer_balance_transaction=customer_balance_transaction,
        effective_at=effective_at if effective_at is not None else created,
        shipping_cost=None, livemode=livemode, metadata=dict(metadata or {}),
        discount_amounts=[], tax_amounts=list(tax_amounts),
        pdf=f"https://pay.stripe.com/credit_notes/{ACCOUNT}/test_{_token(id, length=24)}/pdf?s=ap",
        lines=_list(lines, f"/v1/credit_notes/{id}/lines"),
    )
    return doc


# --- disputes ------------------------------------------------------------------------------

DISPUTE_STATUSES = ("warning_needs_response", "warning_under_review", "warning_closed",
                    "needs_response", "under_review", "won", "lost")


def dispute(*, id: str, charge: str, amount: int, currency: str, created: int,
            status: str = "needs_response", reason: str = "general",
            payment_intent: str | None = None, evidence_due_by: int | None = None,
            has_evidence: bool = False, submission_count: int = 0,
            metadata: Mapping[str, str] | None = None, is_charge_refundable: bool = False,
            payment_method_type: str | None = "card", network_reason_code: str | None = "10.4",
            livemode: bool = False) -> dict[str, Any]:
    """A dispute on a charge (`du_...`).

    Args:
        status: One of `DISPUTE_STATUSES`.
        reason: general | fraudulent | duplicate | product_not_received | ... (Stripe's list).
        evidence_due_by: Epoch seconds; defaults to three weeks after `created`.
        payment_method_type: `card` adds card details; the 2023-08-16 schema has no details
            for other rails, so pass None for disputed bank debits.
    """
    if status not in DISPUTE_STATUSES:
        raise ValueError(f"dispute status must be one of {DISPUTE_STATUSES}, not {status!r}")
    due_by = evidence_due_by if evidence_due_by is not None else created + 21 * 86400
    doc = _T["dispute"].copy()
    doc.update(
        id=id, charge=charge, amount=amount, currency=currency, created=created,
        status=status, reason=reason, payment_intent=payment_intent,
        is_charge_refundable=is_charge_refundable, livemode=livemode,
        metadata=dict(metadata or {}), balance_transactions=[],
        evidence=dict.fromkeys(_EVIDENCE_KEYS),
        evidence_details={"due_by": due_by, "has_evidence": has_evidence,
                          "past_due": False, "submission_count": submission_count},
    )
    if payment_method_type == "card":
        doc["payment_method_details"] = {
            "card": {"brand": "visa", "network_reason_code": network_reason_code},
            "type": "card"}
    else:
        doc.pop("payment_method_details")
    return doc


# --- events -------------------------------------------------------------------------------

def event(*, id: str, type: str, created: int, data_object: Mapping[str, Any],
          previous_attributes: Mapping[str, Any] | None = None, request_id: str | None = None,
          idempotency_key: str | None = None, livemode: bool = False) -> dict[str, Any]:
    """An event (`evt_...`) carrying a snapshot of the object it is about.

    Args:
        type: E.g. `invoice.paid`; see `vendor_specs/stripe/event_types.json`.
        data_object: The object as it was right after the change. It is copied one level
            deep, so later reassignments on the caller's dict do not leak in; builders always
            make fresh nested dicts, so nothing else is shared.
        previous_attributes: For `*.updated`: the changed fields' values before the change.
        request_id: `req_...` of the API request that caused it; None for automatic events.
    """
    data: dict[str, Any] = {"object": dict(data_object)}
    if previous_attributes is not None:
        data["previous_attributes"] = dict(previous_attributes)
    return {
        "id": id, "object": "event", "api_version": API_VERSION, "created": created,
        "data": data, "livemode": livemode, "pending_webhooks": 0,
        "request": {"id": request_id, "idempotency_key": idempotency_key}, "type": type,
    }


# --- store helpers ----------------------------------------------------------------------

_UPSERT = (
    "INSERT INTO stripe_objects (id, object, created, seq, customer, invoice, charge, status, doc) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
    "object = excluded.object, created = excluded.created, customer = excluded.customer, "
    "invoice = excluded.invoice, charge = excluded.charge, status = excluded.status, "
    "doc = excluded.doc"
)
_WITH_LINES = ("invoice", "credit_note")


def _ref(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value["id"]


def _dumps(doc: Mapping[str, Any]) -> str:
    return orjson.dumps(doc).decode()


class _Transaction:
    """BEGIN/COMMIT around a helper's statements unless the caller already opened one."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con
        self.own = not con.in_transaction

    def __enter__(self) -> None:
        if self.own:
            self.con.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.own:
            self.con.execute("ROLLBACK" if exc_type else "COMMIT")


def put_objects(con: sqlite3.Connection, docs: Iterable[Mapping[str, Any]],
                lines: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> None:
    """Insert or update many Stripe objects (customers, invoices, invoice items, charges,
    credit notes, disputes) in one pass.

    New rows get the next `seq` values in the order given; updated rows keep theirs. For an
    invoice or credit note, all its lines are (re)written to `stripe_invoice_lines` (keyed by
    the parent's id) from `lines[parent_id]` when given, else from the embedded list when it
    is complete (`has_more` false); an embedded list with `has_more` true and no `lines`
    entry leaves the stored lines untouched.

    Args:
        con: A sandbox state connection; runs in the caller's transaction if one is open,
            else in its own.
        docs: Documents built by this module (or loaded from the store and changed).
        lines: Full line lists by parent id, for parents with more than ten lines.

    Raises:
        ValueError: A new parent with more than ten lines and no `lines` entry would lose
            lines; detected only for parents with no stored lines.
    """
    docs = list(docs)
    if not docs:
        return
    lines = lines or {}
    with _Transaction(con):
        first = store.next_seq(con, "stripe_objects")
        con.executemany(_UPSERT, [
            (doc["id"], doc["object"], doc["created"] if "created" in doc else doc["date"],
             first + offset, _ref(doc.get("customer")),
             _ref(doc.get("invoice")), _ref(doc.get("charge")), doc.get("status"), _dumps(doc))
            for offset, doc in enumerate(docs)
        ])
        parents: list[str] = []
        rows: list[tuple[str, int, str, str]] = []
        for doc in docs:
            if doc["object"] not in _WITH_LINES:
                continue
            full = lines.get(doc["id"])
            if full is None:
                embedded = doc["lines"]
                if embedded["has_more"]:
                    if con.execute("SELECT 1 FROM stripe_invoice_lines WHERE invoice = ? LIMIT 1",
                                   (doc["id"],)).fetchone() is None:
                        raise ValueError(f"{doc['id']} has more than {EMBEDDED_LINES} lines; "
                                         "pass them all through `lines`")
                    continue
                full = embedded["data"]
            parents.append(doc["id"])
            rows.extend((doc["id"], seq, line["id"], _dumps(line))
                        for seq, line in enumerate(full, start=1))
        if parents:
            con.executemany("DELETE FROM stripe_invoice_lines WHERE invoice = ?",
                            [(parent,) for parent in parents])
            con.executemany("INSERT INTO stripe_invoice_lines (invoice, seq, id, doc) "
                            "VALUES (?, ?, ?, ?)", rows)


def delete_customer(con: sqlite3.Connection, customer_id: str) -> dict[str, Any]:
    """Delete a customer as Stripe does: gone from every list, retrieved as a tombstone
    (`{"id", "object": "customer", "deleted": true}`, stored as object `deleted_customer`); its
    invoices, charges and credit notes stay. Returns the tombstone."""
    tombstone = {"id": customer_id, "object": "customer", "deleted": True}
    with _Transaction(con):
        con.execute("UPDATE stripe_objects SET object = 'deleted_customer', doc = ? WHERE id = ? AND object = 'customer'",
                    (_dumps(tombstone), customer_id))
    return tombstone


def put_object(con: sqlite3.Connection, doc: Mapping[str, Any],
               lines: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Insert or update one Stripe object; see `put_objects`.

    Args:
        lines: For an invoice or credit note, all its lines when they changed or number
            more than ten.
    """
    put_objects(con, [doc], {doc["id"]: lines} if lines is not None else None)


def add_events(con: sqlite3.Connection, docs: Iterable[Mapping[str, Any]]) -> None:
    """Append events (built by `event`) in the order given, after every stored event."""
    docs = list(docs)
    if not docs:
        return
    with _Transaction(con):
        first = store.next_seq(con, "stripe_events")
        con.executemany(
            "INSERT INTO stripe_events (id, created, seq, type, object_id, doc) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(doc["id"], doc["created"], first + offset, doc["type"],
              doc["data"]["object"]["id"], _dumps(doc)) for offset, doc in enumerate(docs)],
        )


def add_event(con: sqlite3.Connection, doc: Mapping[str, Any]) -> None:
    """Append one event after every stored event."""
    add_events(con, [doc])


def load(con: sqlite3.Connection, object_id: str) -> dict[str, Any] | None:
    """The stored document with this id, or None."""
    row = con.execute("SELECT doc FROM stripe_objects WHERE id = ?", (object_id,)).fetchone()
    return None if row is None else orjson.loads(row[0])


def load_lines(con: sqlite3.Connection, parent_id: str) -> list[dict[str, Any]]:
    """Every line of an invoice or credit note, in order."""
    return [orjson.loads(doc) for (doc,) in con.execute(
        "SELECT doc FROM stripe_invoice_lines WHERE invoice = ? ORDER BY seq", (parent_id,))]
