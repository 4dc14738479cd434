"""Score the reconciliation against the sandbox's ground truth: per exception type, what was
injected, what was reported, and whether each amount at risk agrees to the cent.

Each exception type names its subject the same way in both: the ground-truth entry's key record
and the exception's `source_system`/`source_record_id` (plus the billing month for unbilled time).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import ground_truth

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


def truth_key(entry: dict[str, Any]) -> tuple[str, str, str]:
    kind = entry["exception_type"]
    records = entry["records"]
    if kind == "duplicate_customer":
        subject = records[1]  # the later record is the duplicate
    elif kind == "customer_attribute_mismatch":
        owner = entry["details"]["owner_system"]
        subject = next(r for r in records if r["system"] != owner)  # the side holding the wrong value
    elif kind == "unmatched_record":
        subject = records[0]
    else:
        system, obj = SUBJECTS[kind]
        subject = next(r for r in records if r["system"] == system and r["object"] == obj)
    suffix = f":{entry['details']['billing_month']}" if kind == "approved_time_unbilled" else ""
    return kind, subject["system"], f"{subject['id']}{suffix}"


def exception_key(row: dict[str, Any]) -> tuple[str, str, str]:
    suffix = ""
    if row["exception_type"] == "approved_time_unbilled":
        details = row["details"] if isinstance(row["details"], dict) else json.loads(row["details"])
        suffix = f":{details['billing_month']}"
    return row["exception_type"], row["source_system"], f"{row['source_record_id']}{suffix}"


@dataclass
class TypeScore:
    injected: int = 0
    reported: int = 0
    found: int = 0
    amount_mismatches: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    spurious: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.injected if self.injected else 1.0

    @property
    def precision(self) -> float:
        return self.found / self.reported if self.reported else 1.0


def score(truth_file: Path, exceptions: list[dict[str, Any]]) -> dict[str, TypeScore]:
    truth = {truth_key(e): e for e in ground_truth.read(truth_file)}
    reported = {}
    for row in exceptions:
        if row["exception_type"] != "crm_financial_status_stale":
            reported[exception_key(row)] = row
    scores: dict[str, TypeScore] = defaultdict(TypeScore)
    for key, entry in truth.items():
        s = scores[key[0]]
        s.injected += 1
        row = reported.get(key)
        if row is None:
            s.missed.append(entry["fault_id"])
            continue
        s.found += 1
        if row["currency"] != entry["currency"] or abs(float(row["amount_at_risk"]) - entry["amount_at_risk"]) > 0.01:
            s.amount_mismatches.append(f"{entry['fault_id']}: expected {entry['amount_at_risk']} {entry['currency']}, "
                                       f"reported {row['amount_at_risk']} {row['currency']}")
    for key, row in reported.items():
        scores[key[0]].reported += 1
        if key not in truth:
            scores[key[0]].spurious.append(f"{key[1]} {key[2]}")
    return dict(scores)


def table(scores: dict[str, TypeScore], title: str) -> str:
    lines = [title, f"  {'exception type':30} {'injected':>8} {'reported':>8} {'recall':>7} {'precision':>9} "
                    f"{'amounts':>8}"]
    for kind in sorted(scores):
        s = scores[kind]
        amounts = "ok" if not s.amount_mismatches else f"{len(s.amount_mismatches)} off"
        lines.append(f"  {kind:30} {s.injected:>8} {s.reported:>8} {s.recall:>7.0%} {s.precision:>9.0%} {amounts:>8}")
    return "\n".join(lines)


def problems(scores: dict[str, TypeScore]) -> list[str]:
    out = []
    for kind, s in sorted(scores.items()):
        out += [f"{kind}: missed {m}" for m in s.missed[:5]]
        out += [f"{kind}: spurious {m}" for m in s.spurious[:5]]
        out += [f"{kind}: amount {m}" for m in s.amount_mismatches[:5]]
    return out
