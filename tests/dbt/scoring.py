"""Score the reconciliation against the sandbox's ground truth: per exception type, what was
injected, what was reported, and whether each reported row is exactly the fault.

Each exception type names its subject the same way in both: the ground-truth entry's key record
and the exception's `source_system`/`source_record_id` (plus the billing month for unbilled time).
A found fault must also have exactly one row, the client's `customer_id` (the hash of its
HubSpot company id, computed here from the ground truth), the owner that fixes it, and its
amount to the cent both in the record's currency and in the reporting currency (converted here
with the ERP's own published rates). A messy-but-valid record reported as a subject is named as
such.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from sandbox import erp_schema, ground_truth, store

REPORTING_CURRENCY = "USD"

# exception type -> (system, object) of the ground-truth record that is the exception's subject
SUBJECTS = {
    "customer_missing_in_erp": ("hubspot", "company"),
    "contract_value_mismatch": ("hubspot", "deal"),
    "won_deal_without_project": ("hubspot", "deal"),
    "approved_time_unbilled": ("harvest", "project"),
    "invoice_missing_in_erp": ("stripe", "invoice"),
    "invoice_amount_mismatch": ("stripe", "invoice"),
    "invoice_status_mismatch": ("stripe", "invoice"),
    "payment_unapplied": ("stripe", "invoice"),
}

# exception type -> the system whose team fixes it (DECISIONLOG, "The exceptions")
OWNERS = {
    "customer_missing_in_erp": "erp",
    "contract_value_mismatch": "erp",
    "won_deal_without_project": "harvest",
    "approved_time_unbilled": "stripe",
    "invoice_missing_in_erp": "erp",
    "invoice_amount_mismatch": "erp",
    "payment_unapplied": "erp",
}


def _subject(entry: dict[str, Any]) -> dict[str, Any]:
    kind = entry["exception_type"]
    records = entry["records"]
    if kind == "duplicate_customer":
        return records[1]  # the later record is the duplicate
    if kind == "customer_attribute_mismatch":
        owner = entry["details"]["owner_system"]
        return next(r for r in records if r["system"] != owner)  # the side holding the wrong value
    if kind == "unmatched_record":
        return records[0]
    system, obj = SUBJECTS[kind]
    return next(r for r in records if r["system"] == system and r["object"] == obj)


def truth_key(entry: dict[str, Any]) -> tuple[str, str, str]:
    kind = entry["exception_type"]
    subject = _subject(entry)
    suffix = f":{entry['details']['billing_month']}" if kind == "approved_time_unbilled" else ""
    return kind, subject["system"], f"{subject['id']}{suffix}"


def _details(row: dict[str, Any]) -> dict[str, Any]:
    details = row.get("details") or {}
    return details if isinstance(details, dict) else json.loads(details)


def exception_key(row: dict[str, Any]) -> tuple[str, str, str]:
    suffix = ""
    if row["exception_type"] == "approved_time_unbilled":
        suffix = f":{_details(row)['billing_month']}"
    return row["exception_type"], row["source_system"], f"{row['source_record_id']}{suffix}"


def expected_customer_id(entry: dict[str, Any]) -> str | None:
    """`customer_id` is the hash of 'hubspot-' and the client's HubSpot company id."""
    customer = entry["customer"]
    if customer is None:
        return None
    return hashlib.md5(f"hubspot-{customer['hubspot_company_id']}".encode()).hexdigest()


def expected_owner(entry: dict[str, Any]) -> str:
    kind = entry["exception_type"]
    if kind == "invoice_status_mismatch":
        return "erp" if entry["details"]["statuses"]["stripe"] == "void" else "stripe"
    if kind in ("duplicate_customer", "unmatched_record"):
        return _subject(entry)["system"]
    if kind == "customer_attribute_mismatch":
        return entry["details"]["owner_system"]
    return OWNERS[kind]


class ReportingRates:
    """The ERP's published rates (units of each currency per USD), as the sandbox holds them."""

    def __init__(self, data_dir: Path):
        con = store.connect(data_dir)
        try:
            self.as_of = dt.datetime.fromtimestamp(store.Clock(con).now_ms / 1000, dt.timezone.utc).date()
            engine = erp_schema.engine_for(store.erp_url(con, data_dir))
        finally:
            con.close()
        try:
            with engine.connect() as erp:
                rows = erp.execute(text(
                    "SELECT c.name, r.name, r.rate FROM res_currency_rate r JOIN res_currency c ON c.id = r.currency_id"
                )).all()
        finally:
            engine.dispose()
        self.rates: dict[str, list[tuple[dt.date, float]]] = defaultdict(list)
        for currency, day, rate in rows:
            day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)[:10])
            self.rates[currency].append((day, float(rate)))

    def to_reporting(self, amount: float, currency: str) -> float:
        """At the as-of date's rate: the latest published on or before it."""
        if currency == REPORTING_CURRENCY:
            return round(amount, 2)
        rate = max((r for r in self.rates[currency] if r[0] <= self.as_of), key=lambda r: r[0])[1]
        return round(amount / rate, 2)


@dataclass
class TypeScore:
    injected: int = 0
    reported: int = 0
    found: int = 0
    amount_mismatches: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    spurious: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    wrong_customer: list[str] = field(default_factory=list)
    wrong_owner: list[str] = field(default_factory=list)
    valid_reported: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.injected if self.injected else 1.0

    @property
    def precision(self) -> float:
        return self.found / self.reported if self.reported else 1.0


def _amount_problem(entry: dict[str, Any], row: dict[str, Any], rates: ReportingRates | None) -> str | None:
    expected = entry["amount_at_risk"]
    if row["currency"] != entry["currency"] or abs(float(row["amount_at_risk"]) - expected) > 0.005:
        return (f"{entry['fault_id']}: expected {expected} {entry['currency']}, "
                f"reported {row['amount_at_risk']} {row['currency']}")
    if rates is not None and "amount_at_risk_reporting" in row:
        reporting = rates.to_reporting(expected, entry["currency"])
        if row["amount_at_risk_reporting"] is None or abs(float(row["amount_at_risk_reporting"]) - reporting) > 0.005:
            return (f"{entry['fault_id']}: expected {reporting} {REPORTING_CURRENCY}, "
                    f"reported {row['amount_at_risk_reporting']} {REPORTING_CURRENCY}")
    return None


def score(truth_file: Path, exceptions: list[dict[str, Any]], rates: ReportingRates | None = None
          ) -> dict[str, TypeScore]:
    entries = ground_truth.read(truth_file)
    truth = {truth_key(e): e for e in ground_truth.faults(entries)}
    valid_records = {(r["system"], r["id"]): e for e in ground_truth.valid(entries) for r in e["records"]}
    reported: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in exceptions:
        if row["exception_type"] != "crm_financial_status_stale":
            reported[exception_key(row)].append(row)
    scores: dict[str, TypeScore] = defaultdict(TypeScore)
    for key, entry in truth.items():
        s = scores[key[0]]
        s.injected += 1
        rows = reported.get(key)
        if not rows:
            s.missed.append(entry["fault_id"])
            continue
        s.found += 1
        row = rows[0]
        problem = _amount_problem(entry, row, rates)
        if problem:
            s.amount_mismatches.append(problem)
        if "customer_id" in row and row["customer_id"] != expected_customer_id(entry):
            s.wrong_customer.append(f"{entry['fault_id']}: expected {expected_customer_id(entry)}, "
                                    f"reported {row['customer_id']}")
        if "owner_system" in row and row["owner_system"] != expected_owner(entry):
            s.wrong_owner.append(f"{entry['fault_id']}: expected {expected_owner(entry)}, reported {row['owner_system']}")
    for key, rows in reported.items():
        s = scores[key[0]]
        s.reported += len(rows)
        if len(rows) > 1:
            s.duplicates.append(f"{key[1]} {key[2]}: {len(rows)} rows")
        if key not in truth:
            s.spurious.append(f"{key[1]} {key[2]}")
            valid = valid_records.get((key[1], key[2].split(":")[0]))
            if valid is not None:
                s.valid_reported.append(f"{key[1]} {key[2]} is {valid['valid_id']}: {valid['why']}")
    return dict(scores)


def table(scores: dict[str, TypeScore], title: str) -> str:
    lines = [title, f"  {'exception type':30} {'injected':>8} {'reported':>8} {'recall':>7} {'precision':>9} "
                    f"{'amounts':>8} {'rows':>6}"]
    for kind in sorted(scores):
        s = scores[kind]
        amounts = "ok" if not s.amount_mismatches else f"{len(s.amount_mismatches)} off"
        rows = "ok" if not (s.duplicates or s.wrong_customer or s.wrong_owner) else "wrong"
        lines.append(f"  {kind:30} {s.injected:>8} {s.reported:>8} {s.recall:>7.0%} {s.precision:>9.0%} "
                     f"{amounts:>8} {rows:>6}")
    return "\n".join(lines)


def problems(scores: dict[str, TypeScore]) -> list[str]:
    out = []
    for kind, s in sorted(scores.items()):
        out += [f"{kind}: missed {m}" for m in s.missed[:5]]
        out += [f"{kind}: valid record reported {m}" for m in s.valid_reported[:5]]
        out += [f"{kind}: spurious {m}" for m in s.spurious[:5]]
        out += [f"{kind}: amount {m}" for m in s.amount_mismatches[:5]]
        out += [f"{kind}: duplicate {m}" for m in s.duplicates[:5]]
        out += [f"{kind}: customer_id {m}" for m in s.wrong_customer[:5]]
        out += [f"{kind}: owner {m}" for m in s.wrong_owner[:5]]
    return out
