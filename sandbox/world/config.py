"""What the simulated firm looks like: scale presets, legal entities, services and fault rates."""

from __future__ import annotations

import dataclasses
import datetime as dt

DAY = 86_400
NEVER = 2**62  # a timestamp that never arrives

# Where every generated history begins, whatever the as-of date: fixing it is what makes
# `generate --as-of T` followed by `advance --days N` equal `generate --as-of T+N`.
DEFAULT_START = "2025-11-01"
DEFAULT_AS_OF = "2026-11-01"


def parse_date(value: str) -> int:
    """'YYYY-MM-DD' (UTC midnight) or a full ISO timestamp, as epoch seconds."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return int(parsed.timestamp())


@dataclasses.dataclass(frozen=True)
class Scale:
    """Volumes of one preset. Time-entry volume follows from consultants staffed on engagements."""

    name: str
    initial_clients: int
    new_clients_per_month: float
    consultants: int
    owners: int
    deals_per_client_month: float


SCALES = {
    # ≈ 50 clients / 20k time entries over the first year: demo and tests.
    "small": Scale("small", initial_clients=42, new_clients_per_month=0.8, consultants=24,
                   owners=4, deals_per_client_month=0.32),
    # ≈ 1,000 clients / 300k time entries: integration benchmarks.
    "medium": Scale("medium", initial_clients=840, new_clients_per_month=14, consultants=380,
                    owners=25, deals_per_client_month=0.17),
    # ≈ 10,000 clients / 4M time entries: scale benchmarks.
    "large": Scale("large", initial_clients=8400, new_clients_per_month=140, consultants=4600,
                   owners=200, deals_per_client_month=0.28),
}


@dataclasses.dataclass(frozen=True)
class Entity:
    """A legal entity of the firm: an ERP company with its own functional currency."""

    key: str
    name: str
    country: str
    currency: str
    vat: str
    erp_company_id: int


ENTITIES = (
    Entity("us", "Concord Advisory Inc.", "US", "USD", "84-1234567", 1),
    Entity("uk", "Concord Advisory Ltd", "GB", "GBP", "GB123456789", 2),
    Entity("de", "Concord Advisory GmbH", "DE", "EUR", "DE123456789", 3),
)
CURRENCIES = ("USD", "GBP", "EUR")
# Units of each currency per USD on the first day of history; daily moves are simulated.
FX_START = {"USD": 1.0, "GBP": 0.79, "EUR": 0.92}
PAYMENT_TERMS_DAYS = 30

ENGAGEMENT_TYPES = ("time_and_materials", "fixed_fee", "retainer")
SERVICES = (
    ("Data platform build", "Analytics modernisation", "ERP implementation support", "Cloud migration"),
    ("Operating model review", "Due diligence", "Pricing strategy", "Process redesign"),
    ("Advisory retainer", "Fractional CFO retainer", "Architecture retainer", "Support retainer"),
)
ROLES = (("Analyst", 150.0), ("Consultant", 200.0), ("Senior Consultant", 250.0),
         ("Manager", 300.0), ("Partner", 400.0))
# Harvest tasks: (name, billable by default)
TASKS = (("Advisory", True), ("Analysis", True), ("Workshop facilitation", True),
         ("Delivery", True), ("Project management", True), ("Travel", False))
EXPENSE_CATEGORIES = (("Travel", None, None), ("Lodging", None, None), ("Meals", None, None),
                      ("Mileage", "mile", 0.67))
DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
               "decisionmakerboughtin", "contractsent")

# Service levels the firm promises itself; a fault is only expected to be found once its SLA
# has passed (the reconciliation uses the same numbers).
ACTIVATION_SLA_DAYS = 14       # won deal → PSA project
ERP_SETUP_SLA_DAYS = 7         # won deal → ERP customer master
ERP_POSTING_SLA_DAYS = 5       # finalised invoice → ERP AR invoice; payment → ERP payment
TM_INVOICE_DAY = 12            # time of month M is invoiced on the 12th of M+1 (or the next weekday)
TM_BILLING_SLA_DAYS = 16       # ... and is overdue for billing once M+1 is this many days old

FAULT_TYPES = (
    "customer_missing_in_erp",
    "customer_attribute_mismatch",
    "duplicate_customer",
    "contract_value_mismatch",
    "won_deal_without_project",
    "approved_time_unbilled",
    "invoice_missing_in_erp",
    "invoice_amount_mismatch",
    "invoice_status_mismatch",
    "payment_unapplied",
    "unmatched_record",
)

# Probability per eligible record: per client (the first three), per won deal (the next two),
# per T&M engagement-month, per finalised invoice (missing / amount), per voided-or-paid invoice
# (status), per paid invoice (payment), and unmatched records per existing client-year.
DEFAULT_FAULT_RATES = {
    "customer_missing_in_erp": 0.04,
    "customer_attribute_mismatch": 0.05,
    "duplicate_customer": 0.04,
    "contract_value_mismatch": 0.05,
    "won_deal_without_project": 0.04,
    "approved_time_unbilled": 0.04,
    "invoice_missing_in_erp": 0.02,
    "invoice_amount_mismatch": 0.02,
    "invoice_status_mismatch": 0.02,
    "payment_unapplied": 0.02,
    "unmatched_record": 0.05,
}


# Messy but valid data: what a real firm's systems hold that is no fault, and that reconciliation
# must not report. Each kind draws from its own random streams, so its rate never moves a fault.
NOISE_KINDS = (
    "tax",
    "partial_payment",
    "one_transfer",
    "overpayment",
    "refund",
    "full_credit",
    "homonym",
    "extra_domain",
    "vat_format",
    "erp_archive",
    "crm_merge",
    "crm_restore",
    "stripe_delete",
    "harvest_marking",
    "harvest_correction",
    "harvest_delete",
    "harvest_move",
    "slow_posting",
    "fx_calendar",
    "fx_rounding",
)

# Probability per eligible record: `tax` per client of a VAT-registered entity (its invoices
# carry VAT, or name the reverse charge); `partial_payment`, `refund` and `full_credit` per paid
# invoice with no fault, dispute or earlier credit note, `one_transfer` per client with two such
# invoices in a month, `overpayment` per such invoice outside a grouped transfer (see
# world/payments.py); `homonym`, `extra_domain` and `vat_format` per new client without a fault,
# `erp_archive`, `crm_merge`, `crm_restore` and `stripe_delete` per client (see
# world/identity.py); `harvest_marking` per T&M engagement whose project manager marks time
# invoiced in Harvest by hand; `harvest_correction` per billable time entry
# (world/corrections.py), `harvest_delete` and `harvest_move` too (world/time_mistakes.py);
# `slow_posting` per invoice (world/slow_posting.py); `fx_calendar` per day: a weekend rate
# published, a weekday's missing; `fx_rounding` per paid invoice billed in another currency than
# its entity's (world/fx_posting.py).
DEFAULT_NOISE_RATES = {
    "tax": 1.0,
    "partial_payment": 0.06,
    "one_transfer": 0.25,
    "overpayment": 0.03,
    "refund": 0.03,
    "full_credit": 0.01,
    "homonym": 0.04,
    "extra_domain": 0.05,
    "vat_format": 0.2,
    "erp_archive": 0.5,
    "crm_merge": 0.05,
    "crm_restore": 0.03,
    "stripe_delete": 0.03,
    "harvest_marking": 0.3,
    "harvest_correction": 0.01,
    "harvest_delete": 0.005,
    "harvest_move": 0.005,
    "slow_posting": 0.15,
    "fx_calendar": 0.1,
    "fx_rounding": 0.5,
}


def _rates(defaults: dict[str, float], kinds: tuple[str, ...], what: str, overall: float | None,
           overrides: dict[str, float], scale_mean: bool) -> dict[str, float]:
    rates = dict(defaults)
    if overall is not None:
        if scale_mean:
            mean = sum(rates.values()) / len(rates)
            rates = {key: value * overall / mean for key, value in rates.items()}
        else:
            rates = {key: overall for key in rates}
    for key, value in overrides.items():
        if key not in rates:
            raise ValueError(f"unknown {what} {key!r}; known: {', '.join(kinds)}")
        rates[key] = value
    for key, value in rates.items():
        if not 0 <= value <= 1:
            raise ValueError(f"{what} rate for {key} must be within [0, 1], got {value}")
    return rates


def fault_rates(overall: float | None = None, **overrides: float) -> dict[str, float]:
    """Default rates, scaled so the mean is `overall` if given, then per-type overrides."""
    return _rates(DEFAULT_FAULT_RATES, FAULT_TYPES, "fault type", overall, overrides, scale_mean=True)


def noise_rates(overall: float | None = None, **overrides: float) -> dict[str, float]:
    """Default rates, or `overall` for every kind if given, then per-kind overrides."""
    return _rates(DEFAULT_NOISE_RATES, NOISE_KINDS, "noise kind", overall, overrides, scale_mean=False)


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    seed: int
    scale: Scale
    start: int  # epoch s, first day of history
    fault_rates: dict[str, float]
    noise_rates: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_NOISE_RATES))
