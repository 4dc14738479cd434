"""The clean firm the scenarios act on, and a way to pick its records by what their life holds.

The firm is generated with no injected faults and no noise, so every exception after a run comes
from what a scenario's people did. Records are picked from the firm's own simulation up to the
end of the scenario run, so a scenario can ask for "an invoice still open at the end" or "an
invoice paid by card well before the start"; each client is handed to one scenario only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Iterator

import numpy as np

from sandbox.world.config import (
    CURRENCIES, DAY, ENTITIES, NEVER, SCALES, WorldConfig, fault_rates, noise_rates, parse_date,
)
from sandbox.world.derived import (
    ERP_CLIENT_PARTNER_BASE, HS_COMPANY_BASE, HS_DEAL_BASE, HV_PROJECT_BASE, HV_TIME_ENTRY_BASE, derive,
)
from sandbox.world.codes import T_AND_M, TM_MONTHLY
from sandbox.world.firm import simulate

SEED, AS_OF, DAYS = 31, "2026-10-01", 16
START = "2025-01-01"


def clean_rates() -> tuple[dict[str, float], dict[str, float]]:
    return fault_rates(0.0), noise_rates(0.0)


@dataclasses.dataclass(frozen=True)
class Client:
    index: int
    company_id: str
    stripe_customer_id: str
    erp_partner_id: int
    name: str
    domain: str
    vat: str
    currency: str
    books_in: str  # the currency of its legal entity's books


@dataclasses.dataclass(frozen=True)
class Invoice:
    client: Client
    stripe_id: str
    number: str
    total: int  # minor units
    row: int  # in the simulated world's invoices


class Firm:
    """The firm's simulated life from its start to the end of the scenario run."""

    def __init__(self) -> None:
        faults, noise = clean_rates()
        self.start, self.end = parse_date(AS_OF), parse_date(AS_OF) + DAYS * DAY
        self.end_date = dt.datetime.fromtimestamp(self.end, dt.timezone.utc).date()
        config = WorldConfig(seed=SEED, scale=SCALES["small"], start=parse_date(START), fault_rates=faults,
                             noise_rates=noise)
        self.w = simulate(config, self.end)
        self.d = derive(self.w)
        self.taken: set[int] = set()

    def client(self, i: int) -> Client:
        self.taken.add(i)
        d = self.d
        return Client(index=i, company_id=str(HS_COMPANY_BASE + i), stripe_customer_id=d.stripe_customer_id[i],
                      erp_partner_id=ERP_CLIENT_PARTNER_BASE + i, name=d.system_names[i]["hubspot"],
                      domain=d.domain[i], vat=d.vat[i],
                      currency=CURRENCIES[int(self.w.clients["currency"][i])],
                      books_in=ENTITIES[int(self.w.clients["entity"][i])].currency)

    def _first_free(self, candidates: np.ndarray, client_of: np.ndarray) -> int:
        for k in candidates.tolist():
            if int(client_of[k]) not in self.taken:
                return k
        raise LookupError("no record of that kind left for a scenario")

    def billed_client(self, *, eu_vat: bool = False, currency: str | None = None,
                      billed_in_another_currency: bool = False) -> Client:
        """A client with an ERP customer master and a Stripe customer, both set up before the start
        (with `eu_vat`, one with an EU VAT number; with `currency`, one billed in it; with
        `billed_in_another_currency`, one billed in another currency than its entity books in)."""
        d = self.d
        ok = (d.erp_partner_at < self.start) & (d.stripe_customer_at < self.start)
        if eu_vat:
            ok &= np.array([v[:2] in ("DE", "FR", "NL") for v in d.vat])
        if currency:
            ok &= self.w.clients["currency"] == CURRENCIES.index(currency)
        if billed_in_another_currency:
            books_in = np.array([CURRENCIES.index(ENTITIES[int(e)].currency) for e in self.w.clients["entity"]])
            ok &= self.w.clients["currency"] != books_in
        return self.client(self._first_free(np.flatnonzero(ok), np.arange(len(ok))))

    def won_deal(self) -> tuple[Client, str, float, str]:
        """(client, deal id, amount, currency) of a deal won well before the start, with its sale order."""
        e = self.w.engagements
        ok = (e["so_created_at"] < self.start - 30 * DAY)
        k = self._first_free(np.flatnonzero(ok), e["client"])
        deal = int(e["deal"][k])
        return (self.client(int(e["client"][k])), str(HS_DEAL_BASE + deal), float(e["amount"][k]),
                CURRENCIES[int(e["currency"][k])])

    def invoice(self, *, open_at_end: bool = False, paid_by_card_before_start: bool = False,
                for_time: bool = False, open_at_start_for_time: bool = False) -> Invoice:
        """An invoice of a client's engagement, posted to the ERP before the start, in one of
        these lives."""
        inv, d = self.w.invoices, self.d
        ok = (inv["client"] >= 0) & (d.erp_posted_at < self.start) & (inv["cn_at"] >= NEVER) \
            & (inv["disputed_at"] >= NEVER) & (inv["voided_at"] >= NEVER)
        if for_time or open_at_start_for_time:
            ok &= inv["kind"] == TM_MONTHLY
        if open_at_start_for_time:
            ok &= (inv["stripe_paid_at"] > self.start) & (inv["uncollectible_at"] > self.start)
        if open_at_end:
            ok &= (inv["stripe_paid_at"] > self.end) & (inv["uncollectible_at"] > self.end) \
                & (inv["finalized_at"] < self.start - 5 * DAY)
        if paid_by_card_before_start:
            ok &= (inv["stripe_paid_at"] < self.start - 20 * DAY) & (d.erp_paid_at < self.start)
        i = self._first_free(np.flatnonzero(ok), inv["client"])
        return Invoice(self.client(int(inv["client"][i])), d.stripe_invoice_id[i], d.invoice_number[i],
                       int(inv["total"][i]), i)

    def time_invoice_of_the_last_month(self) -> Invoice:
        """A monthly time invoice for the month before the end's, finalised before the end, of
        time partly approved before the start; of the newest client, whom the others want least."""
        inv, d = self.w.invoices, self.d
        last_month = np.datetime64(self.end_date, "M") - 1
        first = int(last_month.astype("datetime64[D]").astype(np.int64))
        ok = (inv["client"] >= 0) & (inv["kind"] == TM_MONTHLY) & (inv["period_start_day"] == first) \
            & (inv["finalized_at"] < self.end - DAY) & (inv["voided_at"] >= NEVER) & (inv["cn_at"] >= NEVER)
        t = self.w.time_entries
        for i in np.flatnonzero(ok)[::-1].tolist():
            approved = (t["engagement"] == inv["engagement"][i]) & t["billable"] & (t["approved_at"] < self.start) \
                & (t["spent_day"] >= first)
            if int(inv["client"][i]) not in self.taken and approved.any():
                return Invoice(self.client(int(inv["client"][i])), d.stripe_invoice_id[i], d.invoice_number[i],
                               int(inv["total"][i]), i)
        raise LookupError("no time invoice of last month left for a scenario")

    def _entries_invoiced_after(self, by: int) -> Iterator[tuple[int, int]]:
        """(client, row) of billable entries approved before `by` (epoch s) whose month's time
        invoice is finalised after it, latest first, of clients no scenario took."""
        t, inv = self.w.time_entries, self.w.invoices
        monthly = inv["kind"] == TM_MONTHLY
        for row in np.flatnonzero(t["billable"] & (t["approved_at"] < by - DAY) & ~t["deleted"])[::-1].tolist():
            first = int(np.datetime64(int(t["spent_day"][row]), "D").astype("datetime64[M]").astype("datetime64[D]")
                        .astype(np.int64))
            invoice = monthly & (inv["engagement"] == t["engagement"][row]) & (inv["period_start_day"] == first)
            client = int(self.w.engagements["client"][t["engagement"][row]])
            if invoice.any() and inv["finalized_at"][invoice].min() > by + DAY and client not in self.taken:
                yield client, row

    def approved_entry_invoiced_after(self, by: int) -> tuple[Client, int, float]:
        """(client, Harvest id, hours) of a billable entry approved before `by` (epoch s) whose
        month's time invoice is finalised after it."""
        for client, row in self._entries_invoiced_after(by):
            return self.client(client), HV_TIME_ENTRY_BASE + row, float(self.w.time_entries["hours"][row])
        raise LookupError("no approved entry of a month not yet invoiced left for a scenario")

    def entry_with_another_project(self, by: int) -> tuple[Client, int, Client, int]:
        """(client, Harvest id) of such an entry, and (client, Harvest project id) of another T&M
        project its consultant works on that day, of another client: the newest such pair of
        clients, which other scenarios want least."""
        t, e, m = self.w.time_entries, self.w.engagements, self.w.members
        found = []
        for client, row in self._entries_invoiced_after(by):
            day = int(t["spent_day"][row])
            for k in np.flatnonzero(m["user"] == t["user"][row]).tolist():
                other = int(m["engagement"][k])
                other_client = int(e["client"][other])
                if e["kind"][other] == T_AND_M and e["start_day"][other] <= day <= e["end_day"][other] \
                        and e["project_created_at"][other] < self.start and other_client not in self.taken | {client}:
                    found.append((min(client, other_client), client, row, other_client, other))
        if not found:
            raise LookupError("no consultant with projects of two clients on one day left for a scenario")
        _, client, row, other_client, other = max(found)
        return self.client(client), HV_TIME_ENTRY_BASE + row, self.client(other_client), HV_PROJECT_BASE + other

    def approved_time(self, invoice: Invoice) -> list[int]:
        """Harvest ids of the approved billable time entries of a monthly time invoice's month."""
        inv, t = self.w.invoices, self.w.time_entries
        first = int(inv["period_start_day"][invoice.row])
        month = np.datetime64(first, "D").astype("datetime64[M]")
        following = int((month + 1).astype("datetime64[D]").astype(np.int64))
        rows = np.flatnonzero((t["engagement"] == inv["engagement"][invoice.row]) & t["billable"] & ~t["deleted"]
                              & (t["spent_day"] >= first) & (t["spent_day"] < following)
                              & (t["approved_at"] < self.start))
        assert len(rows), "a month of time invoiced has approved time"
        return (HV_TIME_ENTRY_BASE + rows).tolist()

    def open_invoices_of_one_client(self) -> list[Invoice]:
        """Two invoices of one client, both still open at the end."""
        inv, d = self.w.invoices, self.d
        ok = (inv["client"] >= 0) & (d.erp_posted_at < self.start) & (inv["cn_at"] >= NEVER) \
            & (inv["voided_at"] >= NEVER) & (inv["stripe_paid_at"] > self.end) & (inv["uncollectible_at"] > self.end)
        for c in np.unique(inv["client"][ok]).tolist():
            rows = np.flatnonzero(ok & (inv["client"] == c))
            if len(rows) >= 2 and c not in self.taken:
                client = self.client(c)
                return [Invoice(client, d.stripe_invoice_id[i], d.invoice_number[i], int(inv["total"][i]), i)
                        for i in rows[:2].tolist()]
        raise LookupError("no client with two open invoices left for a scenario")

    def idle_client(self) -> Client:
        """A client whose last engagement ended months before the start and who owes nothing."""
        e, inv = self.w.engagements, self.w.invoices
        last_end = np.full(len(self.w.clients), -1)
        np.maximum.at(last_end, e["client"], e["end_day"])
        unsettled = np.zeros(len(self.w.clients), dtype=bool)
        unsettled[inv["client"][(inv["client"] >= 0) & (inv["stripe_paid_at"] > self.start)
                                & (inv["voided_at"] > self.start)]] = True
        ok = (last_end >= 0) & (last_end * DAY < self.start - 90 * DAY) & ~unsettled \
            & (self.d.erp_partner_at < self.start)
        return self.client(self._first_free(np.flatnonzero(ok), np.arange(len(ok))))
