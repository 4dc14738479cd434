"""Facts every system's projection needs: when each client first appears in each system, the
ids each system gives a record, and the numbers documents carry.

Ids are pure functions of the world (seed and record index), so the same record has the same id
in `generate` and in every later `advance`, and ground truth can name it.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from sandbox.stripe_objects import stripe_id
from sandbox.world import identity, names
from sandbox.world.config import DAY, NEVER
from sandbox.world.codes import (
    ATTR_COUNTRY, ATTR_DOMAIN, ATTR_VAT, CF_ATTRIBUTE, CF_DUPLICATE, CF_MISSING_IN_ERP, DUP_ERP, DUP_HARVEST,
    DUP_HUBSPOT, DUP_STRIPE, EF_NO_PROJECT,
)
from sandbox.world.firm import World

HS_COMPANY_BASE = 20_000_000_000
HS_DUPLICATE_COMPANY_BASE = 29_000_000_000
HS_MERGED_COMPANY_BASE = 28_000_000_000  # a second company for a client, merged away later (`crm_merge`)
HS_CONTACT_BASE = 30_000_000_000
HS_DEAL_BASE = 40_000_000_000
HV_CLIENT_BASE = 10_000_000
HV_DUPLICATE_CLIENT_BASE = 18_000_000
HV_ORPHAN_CLIENT_BASE = 19_000_000
HV_PROJECT_BASE = 20_000_000
HV_ORPHAN_PROJECT_BASE = 29_000_000
HV_USER_BASE = 30_000_000
HV_TASK_BASE = 40_000_000
HV_USER_ASSIGNMENT_BASE = 50_000_000
HV_TASK_ASSIGNMENT_BASE = 60_000_000
HV_EXPENSE_BASE = 70_000_000
HV_EXPENSE_CATEGORY_BASE = 80_000_000
HV_TIME_ENTRY_BASE = 1_000_000_000
HV_ENTRY_IN_ERROR_BASE = 900_000_000  # time logged twice, the copy deleted later (`harvest_delete`)
ERP_CLIENT_PARTNER_BASE = 1_000
ERP_MISC_PARTNER_ID = 999  # "Card sales - unidentified customers"
ERP_INVOICE_CONTACT_BASE = 200_000
ERP_DUPLICATE_PARTNER_BASE = 500_000
ERP_REFUND_BASE = 2_000_000
ERP_INSTALMENT_PAYMENT_BASE = 10_000_000  # + invoice * 10 + instalment
OWNER_BASE = 71_000_000

def invoice_prefix(customer_id: str) -> str:
    digest = hashlib.blake2b(customer_id.encode(), digest_size=4).hexdigest().upper()
    return digest


def rank_within(groups: np.ndarray, times: np.ndarray) -> np.ndarray:
    """1-based order of each row by `times` within its group (ties broken by row order)."""
    order = np.lexsort((np.arange(len(times)), times, groups))
    ranks = np.empty(len(times), dtype=np.int64)
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(sorted_groups[1:] != sorted_groups[:-1]) + 1]
    position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    ranks[order] = position + 1
    return ranks


def min_by_group(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    out = np.full(size, NEVER, dtype=np.int64)
    np.minimum.at(out, groups, values)
    return out


@dataclasses.dataclass
class Derived:
    """Per-record facts, aligned with the world's tables."""

    # clients
    system_names: list[dict[str, str]]
    domain: list[str]
    extra_domain: list[str | None]  # a second domain the client bills from, listed in HubSpot
    vat: list[str]
    first_opened_at: np.ndarray
    first_won_at: np.ndarray
    erp_partner_at: np.ndarray
    hs_erp_ref_at: np.ndarray
    stripe_customer_at: np.ndarray
    harvest_client_at: np.ndarray
    duplicate_at: np.ndarray  # when the duplicate record appears (NEVER if none)
    erp_archived_at: np.ndarray  # when finance archives the ERP partner of a client gone quiet (`erp_archive`)
    stripe_customer_id: list[str]
    duplicate_stripe_customer_id: list[str]
    # a second Stripe customer created by mistake and deleted (`stripe_delete`), where the client
    # had one of its own by then
    extra_stripe_customer_id: list[str]
    extra_stripe_customer_at: np.ndarray
    extra_stripe_customer_deleted_at: np.ndarray
    erp_ref: list[str]
    # what each system believes, where an attribute fault makes one of them wrong
    hubspot_vat: list[str]
    hubspot_vat_shown: np.ndarray  # HubSpot holds a VAT number (a wrong one always)
    stripe_country: list[str]
    stripe_domain: list[str]
    # engagements
    has_project: np.ndarray
    project_archived_at: np.ndarray
    # invoices
    stripe_invoice_id: list[str]
    stripe_charge_id: list[str]
    stripe_customer_of_invoice: list[str]
    invoice_number: list[str]
    erp_move_name: list[str]
    erp_refund_name: list[str]
    erp_payment_name: list[str]
    # ERP postings, NEVER where the ERP has no customer to post them to
    erp_posted_at: np.ndarray
    erp_paid_at: np.ndarray
    erp_cn_at: np.ndarray
    erp_cancel_at: np.ndarray
    # orphans
    orphan_stripe_customer_id: list[str]

    @staticmethod
    def so_name(engagement: int) -> str:
        return f"S{engagement + 1:05d}"


def derive(world: World) -> Derived:
    seed = world.seed
    clients, deals, engagements, invoices = world.clients, world.deals, world.engagements, world.invoices
    n_clients = len(clients)

    system = [names.system_names(b, c, v) for b, c, v in
              zip(clients["base_name"].tolist(), clients["country"].tolist(), clients["variant"].tolist())]
    domain = [names.domain_for(b, c) if h < 0 or near else
              identity.homonym_domain(b, names.COUNTRIES[c][4][v % 5], names.COUNTRIES[c][2])
              for b, c, v, h, near in zip(clients["base_name"].tolist(), clients["country"].tolist(),
                                          clients["variant"].tolist(), clients["homonym_of"].tolist(),
                                          clients["homonym_near"].tolist())]
    extra_domain = [identity.extra_domain(b, names.COUNTRIES[c][2]) if extra else None
                    for b, c, extra in zip(clients["base_name"].tolist(), clients["country"].tolist(),
                                           clients["extra_domain"].tolist())]
    vat = [names.tax_id(c, t) for c, t in zip(clients["country"].tolist(), clients["tax_number"].tolist())]

    attribute = np.where(clients["fault"] == CF_ATTRIBUTE, clients["fault_attr"], -1)
    hubspot_vat, stripe_country, stripe_domain = [], [], []
    for i, (country, wrong) in enumerate(zip(clients["country"].tolist(), clients["fault_value"].tolist())):
        hubspot_vat.append(identity.typed_vat(names.tax_id(country, wrong) if attribute[i] == ATTR_VAT else vat[i],
                                              country, int(clients["vat_format"][i])))
        others = [c for c in names.COUNTRY_CODES if c != country]
        stripe_country.append(others[wrong % len(others)] if attribute[i] == ATTR_COUNTRY else country)
        word, _, sector = clients["base_name"][i].partition(" ")
        stripe_domain.append(f"{word.lower()}-{sector.lower().replace(' ', '')}.net"
                             if attribute[i] == ATTR_DOMAIN else extra_domain[i] or domain[i])

    first_opened = min_by_group(deals["client"], deals["opened_at"], n_clients) if len(deals) else \
        np.full(n_clients, NEVER, dtype=np.int64)
    eng_client = engagements["client"] if len(engagements) else np.array([], dtype=np.int64)
    first_won = min_by_group(eng_client, engagements["close_at"], n_clients) if len(engagements) else \
        np.full(n_clients, NEVER, dtype=np.int64)
    won = first_won < NEVER
    missing_erp = clients["fault"] == CF_MISSING_IN_ERP
    erp_partner_at = np.where(won & ~missing_erp, first_won + clients["erp_lag"], NEVER)
    hs_erp_ref_at = np.where((erp_partner_at < NEVER) & ~clients["hs_erp_ref_missing"],
                             erp_partner_at + clients["hs_ref_lag"], NEVER)
    stripe_customer_at = np.where(won, first_won + clients["stripe_lag"], NEVER)

    has_project = engagements["fault"] != EF_NO_PROJECT if len(engagements) else np.array([], dtype=bool)
    if len(engagements):
        first_project = min_by_group(eng_client[has_project], engagements["project_created_at"][has_project],
                                     n_clients)
    else:
        first_project = np.full(n_clients, NEVER, dtype=np.int64)
    harvest_client_at = np.where(first_project < NEVER,
                                 np.maximum(first_project - clients["harvest_lag"], clients["created_at"]), NEVER)
    project_archived_at = (engagements["end_day"] + 1) * DAY + engagements["project_archive_lag"] \
        if len(engagements) else np.array([], dtype=np.int64)

    # finance archives the ERP partner of a client whose last engagement ended four months ago
    last_end = np.full(n_clients, -1, dtype=np.int64)
    if len(engagements):
        np.maximum.at(last_end, eng_client, (engagements["end_day"] + 1) * DAY)
    erp_archived_at = np.where(clients["erp_archive"] & (erp_partner_at < NEVER) & (last_end > 0),
                               last_end + 120 * DAY, NEVER)

    dup = clients["fault"] == CF_DUPLICATE
    dup_system = clients["fault_dup_system"]
    anchor = np.select(
        [dup_system == DUP_HUBSPOT, dup_system == DUP_ERP, dup_system == DUP_STRIPE, dup_system == DUP_HARVEST],
        [clients["created_at"], erp_partner_at, stripe_customer_at, harvest_client_at])
    duplicate_at = np.where(dup & (anchor < NEVER), anchor + clients["fault_dup_delay"], NEVER)

    stripe_customer_id = [stripe_id("cus", seed, "client", i) for i in range(n_clients)]
    has_extra = clients["stripe_extra_at"] >= stripe_customer_at
    extra_at = np.where(has_extra, clients["stripe_extra_at"], NEVER)
    extra_deleted_at = np.where(has_extra, clients["stripe_extra_deleted_at"], NEVER)
    orphan_customer_id = [stripe_id("cus", seed, "orphan", i) for i in range(len(world.orphans))]
    erp_ref = [f"C{i + 1:05d}" for i in range(n_clients)]

    n_inv = len(invoices)
    stripe_invoice_id = [stripe_id("in", seed, "invoice", i) for i in range(n_inv)]
    stripe_charge_id = [stripe_id("ch", seed, "charge", i) for i in range(n_inv)]
    customer_key = np.where(invoices["client"] >= 0, invoices["client"], n_clients + invoices["orphan"]) \
        if n_inv else np.array([], dtype=np.int64)
    customer_of_invoice = [stripe_customer_id[k] if k < n_clients else orphan_customer_id[k - n_clients]
                           for k in customer_key.tolist()]
    sequence = rank_within(customer_key, invoices["finalized_at"]) if n_inv else np.array([], dtype=np.int64)
    for i, customer in enumerate(customer_of_invoice) if world.api_finalized else ():
        sequence[i] += world.api_numbers_by(customer, int(invoices["finalized_at"][i]))
    number = [f"{invoice_prefix(c)}-{s:04d}" for c, s in zip(customer_of_invoice, sequence.tolist())]

    client_of_invoice = np.maximum(invoices["client"], 0) if n_inv else np.array([], dtype=np.int64)
    # One-off card sales to people nobody recognises post to the ERP's catch-all partner.
    in_erp = (invoices["orphan"] >= 0) | (erp_partner_at[client_of_invoice] < NEVER) if n_inv \
        else np.array([], dtype=bool)
    erp_times = {name: np.where(in_erp, invoices[name], NEVER) if n_inv else np.array([], dtype=np.int64)
                 for name in ("erp_posted_at", "erp_paid_at", "erp_cn_at", "erp_cancel_at")}
    entity = np.where(invoices["client"] >= 0, clients["entity"][client_of_invoice], 0) if n_inv \
        else np.array([], dtype=np.int64)
    move_name = _document_names("INV", entity, erp_times["erp_posted_at"]) if n_inv else []
    refund_name = _document_names("RINV", entity, erp_times["erp_cn_at"]) if n_inv else []
    payment_name = _document_names("PBNK", entity, erp_times["erp_paid_at"]) if n_inv else []

    return Derived(
        system_names=system, domain=domain, extra_domain=extra_domain, vat=vat,
        first_opened_at=first_opened, first_won_at=first_won, erp_partner_at=erp_partner_at,
        hs_erp_ref_at=hs_erp_ref_at, stripe_customer_at=stripe_customer_at, harvest_client_at=harvest_client_at,
        duplicate_at=duplicate_at, erp_archived_at=erp_archived_at, stripe_customer_id=stripe_customer_id, erp_ref=erp_ref,
        duplicate_stripe_customer_id=[stripe_id("cus", seed, "duplicate", i) for i in range(n_clients)],
        extra_stripe_customer_id=[stripe_id("cus", seed, "in_error", i) for i in range(n_clients)],
        extra_stripe_customer_at=extra_at, extra_stripe_customer_deleted_at=extra_deleted_at,
        stripe_charge_id=stripe_charge_id,
        hubspot_vat=hubspot_vat, hubspot_vat_shown=clients["hs_vat_present"] | (attribute == ATTR_VAT),
        stripe_country=stripe_country, stripe_domain=stripe_domain,
        has_project=has_project, project_archived_at=project_archived_at,
        stripe_invoice_id=stripe_invoice_id, stripe_customer_of_invoice=customer_of_invoice,
        invoice_number=number, erp_move_name=move_name, erp_refund_name=refund_name,
        erp_payment_name=payment_name, orphan_stripe_customer_id=orphan_customer_id, **erp_times,
    )


def _document_names(prefix: str, entity: np.ndarray, posted_at: np.ndarray) -> list[str]:
    """Odoo-style `INV/2026/00042` per company and year, numbered in posting order."""
    year = np.datetime64("1970") + (np.minimum(posted_at, 4_000_000_000) // DAY).astype("timedelta64[D]")
    year = year.astype("datetime64[Y]").astype(np.int64) + 1970
    seq = rank_within(entity * 10_000 + year, posted_at)
    return [f"{prefix}{'' if prefix != 'PBNK' else str(e + 1)}/{y}/{s:05d}"
            for e, y, s in zip(entity.tolist(), year.tolist(), seq.tolist())]
