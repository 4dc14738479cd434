"""The simulated firm: clients, deals, engagements, time, invoices and payments over time.

The firm is simulated month by month. Everything that originates in a month is drawn from
that month's own random stream (seeded by the run seed and the month's index since the fixed
start of history), and every record carries the timestamps of its whole planned life — a deal
its stage changes, an invoice its finalisation, payment, credit note, dispute and ERP postings
— even when they lie beyond the as-of date. What a system shows at time T is the projection of
those timestamps up to T. Hence the world up to T is the same however far it is simulated, and
`advance` is simply "simulate to the new date and apply what happened in between".

Volumes are vectorised with numpy; Python loops run only per engagement or smaller.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from sandbox.world import corrections, identity, names, tax, time_mistakes
from sandbox.world.codes import (
    CF_ATTRIBUTE, CF_DUPLICATE, CF_MISSING_IN_ERP, CF_NONE, EF_CONTRACT_AMENDED, EF_CONTRACT_TYPO, EF_NONE,
    EF_NO_PROJECT, FIXED_FEE, MILESTONE, ORPHAN_HARVEST, ORPHAN_STRIPE, ORPHAN_WORKSHOP, RETAINER, RETAINER_FEE,
    S_BILLING, S_CLIENTS, S_DEALS, S_EXPENSES, S_FX, S_NOISE_CORRECTIONS, S_NOISE_FX, S_NOISE_FX_POSTING,
    S_NOISE_HARVEST, S_NOISE_IDENTITY, S_NOISE_OVERPAYMENTS, S_NOISE_PAYMENTS, S_NOISE_TAX, S_NOISE_TIMING,
    S_NOISE_TIME_COPIES, S_NOISE_TIME_MOVES, S_NOISE_TRANSFERS, S_ORPHANS, S_STATIC, S_TIME, T_AND_M,
)
from sandbox.world.config import (
    CURRENCIES, DAY, DEAL_STAGES, ENTITIES, EXPENSE_CATEGORIES, FX_START, NEVER, ROLES, TASKS, WorldConfig,
)
from sandbox.world.draws import (
    WORKING_HOURS_START, day_of, expand_ranges, month_starts, next_weekday, stream, uniform_seconds, weekday,
)
from sandbox.world.invoicing import Invoicing
from sandbox.world.table import Table

CURRENCY_INDEX = {c: i for i, c in enumerate(CURRENCIES)}
ENTITY_BY_COUNTRY = {"US": 0, "GB": 1, "DE": 2, "FR": 2, "NL": 2}
COUNTRY_WEIGHTS = np.array([0.45, 0.25, 0.12, 0.08, 0.10])
FX_HISTORY_DAYS = 540


@dataclasses.dataclass
class World:
    """Everything the firm did from the start of history to the end of `months`."""

    config: WorldConfig
    month_starts: np.ndarray  # epoch s of each simulated month, plus the end of the last
    users: Table
    clients: Table
    contacts: Table
    deals: Table
    engagements: Table
    members: Table
    time_entries: Table
    expenses: Table
    invoices: Table
    invoice_lines: Table
    unbilled_faults: Table
    orphans: Table
    entries_in_error: Table  # time logged twice, the copy deleted (`harvest_delete`)
    fx: Table
    # Stripe customer id -> when invoices a client created through the API were finalised: they
    # take numbers from the customer's sequence too (set by `sandbox.facts`)
    api_finalized: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.config.seed

    def api_numbers_by(self, customer: str, at: int) -> int:
        """How many of a Stripe customer's invoice numbers the API had taken by `at`."""
        return sum(t <= at for t in self.api_finalized.get(customer, ()))


class FirmSimulator(Invoicing):
    """Simulates the firm month by month; `run(end)` returns the World up to `end`'s month.

    `amend_time(entries, first)`, if given, rewrites each month's new time entries (global rows
    from `first`) in place as soon as they are planned, before anything is billed from them: how
    writes made through Harvest's API become part of the world (`sandbox.facts.harvest`).
    """

    def __init__(self, config: WorldConfig, amend_time: Callable[[Table, int], None] | None = None):
        self.config = config
        self.amend_time = amend_time
        self.scale = config.scale
        self.rates = config.fault_rates
        self.noise = config.noise_rates
        self.lent_names: set[int] = set()  # clients whose name a homonym took
        seed = config.seed
        static = np.random.default_rng([seed, 0, S_STATIC])
        self.name_order = static.permutation(names.NAME_SPACE)
        self.users = self._users(static)
        self.chunks: dict[str, list[Table]] = {k: [] for k in (
            "clients", "contacts", "deals", "engagements", "members", "time_entries", "expenses",
            "invoices", "invoice_lines", "unbilled_faults", "orphans", "fx", "entries_in_error")}
        self.n = {k: 0 for k in self.chunks}
        self.fx_level = np.array([FX_START[c] for c in CURRENCIES])
        self._fx_history(static)

    # -- static roster -------------------------------------------------------------------
    def _users(self, rng: np.random.Generator) -> Table:
        n = self.scale.consultants
        role = rng.choice(len(ROLES), n, p=[0.25, 0.3, 0.22, 0.15, 0.08])
        first, last = names.person_names(rng.integers(0, 10_000, n), rng.integers(0, 10_000, n))
        base_rate = np.array([ROLES[r][1] for r in role])
        start = self.config.start
        return Table(
            first_name=np.array(first, dtype=object),
            last_name=np.array(last, dtype=object),
            role=role,
            entity=rng.choice(3, n, p=[0.5, 0.3, 0.2]),
            is_contractor=rng.random(n) < 0.1,
            base_rate=base_rate,
            cost_rate=np.round(base_rate * rng.uniform(0.35, 0.5, n), 0),
            capacity=np.where(rng.random(n) < 0.1, 24 * 3600, 40 * 3600),
            created_at=start - uniform_seconds(rng, 60, 1500, n),
            availability=rng.uniform(0.75, 0.95, n),
        )

    # -- the monthly loop ----------------------------------------------------------------------
    def run(self, end: int) -> World:
        starts = month_starts(self.config.start, end)
        for m in range(len(starts) - 1):
            self._month(m, int(starts[m]), int(starts[m + 1]))
        tables = {k: Table.concat(v) for k, v in self.chunks.items()}
        return World(config=self.config, month_starts=starts, users=self.users, **tables)

    def _append(self, kind: str, table: Table) -> int:
        """Append a chunk; returns the global index of its first row."""
        first = self.n[kind]
        if len(table):
            self.chunks[kind].append(table)
            self.n[kind] += len(table)
        return first

    def _all(self, kind: str) -> Table:
        return Table.concat(self.chunks[kind])

    def _month(self, m: int, m0: int, m1: int) -> None:
        seed = self.config.seed
        self._fx(stream(seed, m, S_FX), m0, m1)
        self.payment_noise = stream(seed, m, S_NOISE_PAYMENTS)
        self.transfer_noise = stream(seed, m, S_NOISE_TRANSFERS)
        self.overpayment_noise = stream(seed, m, S_NOISE_OVERPAYMENTS)
        self.correction_noise = stream(seed, m, S_NOISE_CORRECTIONS)
        self.copy_noise = stream(seed, m, S_NOISE_TIME_COPIES)
        self.move_noise = stream(seed, m, S_NOISE_TIME_MOVES)
        self.fx_posting_noise = stream(seed, m, S_NOISE_FX_POSTING)
        self.harvest_noise = stream(seed, m, S_NOISE_HARVEST)
        self.timing_noise = stream(seed, m, S_NOISE_TIMING)
        self._new_clients(stream(seed, m, S_CLIENTS), m, m0, m1, stream(seed, m, S_NOISE_TAX),
                          stream(seed, m, S_NOISE_IDENTITY))
        self._new_deals(stream(seed, m, S_DEALS), m, m0, m1)
        self._tm_invoices(stream(seed, m, S_BILLING), m, m0)
        self._time(stream(seed, m, S_TIME), m0, m1)
        self._expenses(stream(seed, m, S_EXPENSES), m0, m1)
        self._orphans(stream(seed, m, S_ORPHANS), m0, m1)

    # -- FX ------------------------------------------------------------------------------------
    def _fx_history(self, rng: np.random.Generator) -> None:
        """Rates for the years before the simulation starts: documents of engagements already
        running then are dated before it, and the ERP has rates for them."""
        start_day = self.config.start // DAY
        days = np.arange(start_day - FX_HISTORY_DAYS, start_day)
        steps = rng.normal(0, 0.004, (len(days), len(CURRENCIES)))
        steps[:, 0] = 0
        backwards = np.cumsum(steps[::-1], axis=0)[::-1]  # walk back from the first simulated day
        path = self.fx_level * np.exp(-backwards)
        self._append("fx", Table(day=days, published=self._published(days, stream(self.config.seed, 0, S_NOISE_FX)),
                                 **{c: path[:, i] for i, c in enumerate(CURRENCIES)}))

    def _fx(self, rng: np.random.Generator, m0: int, m1: int) -> None:
        days = np.arange(m0 // DAY, m1 // DAY)
        steps = rng.normal(0, 0.004, (len(days), len(CURRENCIES)))
        steps[:, 0] = 0
        path = self.fx_level * np.exp(np.cumsum(steps, axis=0))
        self.fx_level = path[-1]
        noise = stream(self.config.seed, m0 // DAY, S_NOISE_FX)
        self._append("fx", Table(day=days, published=self._published(days, noise),
                                 **{c: path[:, i] for i, c in enumerate(CURRENCIES)}))

    def _published(self, days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Days the ERP has a rate for: business days, but for the odd bank holiday, and the odd
        weekend on which a rate was published all the same (the `fx_calendar` noise)."""
        draw = rng.random(len(days))
        rate = self.noise["fx_calendar"]
        business = weekday(days) < 5
        return np.where(business, draw >= rate / 3, draw < rate)

    # -- clients ---------------------------------------------------------------------------------
    def _new_clients(self, rng: np.random.Generator, m: int, m0: int, m1: int,
                     tax_rng: np.random.Generator, identity_rng: np.random.Generator) -> None:
        n = self.scale.initial_clients if m == 0 else int(rng.poisson(self.scale.new_clients_per_month))
        if n == 0:
            return
        first = self.n["clients"]
        if m == 0:
            created = m0 - uniform_seconds(rng, 20, 900, n)
        else:
            created = rng.integers(m0, m1, n)
        country_idx = rng.choice(len(names.COUNTRY_CODES), n, p=COUNTRY_WEIGHTS)
        country = np.array([names.COUNTRY_CODES[i] for i in country_idx], dtype=object)
        entity = np.array([ENTITY_BY_COUNTRY[c] for c in country])
        billed_in_usd = (entity != 0) & (rng.random(n) < 0.1)
        currency = np.where(billed_in_usd, 0, np.array([CURRENCY_INDEX[ENTITIES[e].currency] for e in entity]))
        index = np.arange(first, first + n)
        space = names.NAME_SPACE
        base, sector = names.client_base_names(self.name_order[index % space] + space * (index // space))
        rates = self.rates
        fault_draw = rng.random(n)
        p_missing = rates["customer_missing_in_erp"]
        p_attr = rates["customer_attribute_mismatch"]
        p_dup = rates["duplicate_customer"]
        fault = np.select(
            [fault_draw < p_missing, fault_draw < p_missing + p_attr, fault_draw < p_missing + p_attr + p_dup],
            [CF_MISSING_IN_ERP, CF_ATTRIBUTE, CF_DUPLICATE], CF_NONE)
        # Lead-only clients that go cold and are archived in the CRM; they never win a deal.
        archived = (rng.random(n) < 0.04) & (fault == CF_NONE)
        treatment, rate_bp = tax.client_treatment(country, entity, tax_rng.random(n), tax_rng.random(n),
                                                  self.noise["tax"])
        earlier = self._all("clients")
        earlier_clean = np.flatnonzero(earlier["fault"] == CF_NONE) if len(earlier) else np.array([], dtype=np.int64)
        traps: dict[str, np.ndarray] = {}
        identity.plan(traps, identity_rng, self.noise, first, earlier_clean, self.lent_names, fault == CF_NONE,
                      created.astype(np.int64), m0)
        for column in ("crm_duplicate_at", "crm_merged_at"):  # nobody retypes a lead gone cold
            traps[column] = np.where(archived, NEVER, traps[column])
        for k in np.flatnonzero(traps["homonym_of"] >= 0).tolist():
            target = int(traps["homonym_of"][k])
            lender = earlier["base_name"][target] if target < first else base[target - first]
            base[k] = identity.homonym_name(lender, bool(traps["homonym_near"][k]))
            sector[k] = earlier["sector"][target] if target < first else sector[target - first]
        clients = Table(
            created_at=created.astype(np.int64),
            base_name=np.array(base, dtype=object),
            sector=np.array(sector, dtype=object),
            country=country,
            entity=entity,
            currency=currency,
            variant=rng.integers(0, 100, n),
            tax_number=rng.integers(10**8, 10**9, n),
            owner=rng.integers(0, self.scale.owners, n),
            employees=np.round(rng.lognormal(6, 1.3, n)).astype(np.int64) + 5,
            archived_at=np.where(archived, created + uniform_seconds(rng, 60, 300, n), NEVER),
            hs_domain_missing=(rng.random(n) < 0.08) & (fault != CF_ATTRIBUTE),
            hs_vat_present=rng.random(n) < 0.6,
            hs_erp_ref_missing=rng.random(n) < 0.12,
            stripe_no_hubspot_ref=rng.random(n) < 0.1,
            stripe_no_erp_ref=rng.random(n) < 0.1,
            fault=fault,
            fault_attr=rng.integers(0, 3, n),
            fault_dup_system=rng.integers(0, 4, n),
            fault_dup_delay=uniform_seconds(rng, 15, 200, n),
            fault_value=rng.integers(10**8, 10**9, n),
            erp_lag=uniform_seconds(rng, 0.2, 2, n),
            hs_ref_lag=uniform_seconds(rng, 0.5, 6, n),
            stripe_lag=uniform_seconds(rng, 1, 7, n),
            harvest_lag=uniform_seconds(rng, 0.5, 5, n),
            ms_jitter=rng.integers(0, 1000, n),
            tax_treatment=treatment,
            tax_rate_bp=rate_bp,
            **traps,
        )
        self._append("clients", clients)
        # Contacts: one to four people per client, created over the relationship's first months.
        per_client = rng.integers(1, 5, n)
        owner = np.repeat(np.arange(n), per_client)
        k = len(owner)
        first_name, last_name = names.person_names(rng.integers(0, 10_000, k), rng.integers(0, 10_000, k))
        created_c = created[owner] + uniform_seconds(rng, 0, 240, k) * (rng.random(k) < 0.6)
        self._append("contacts", Table(
            client=owner + first,
            first_name=np.array(first_name, dtype=object),
            last_name=np.array(last_name, dtype=object),
            title=rng.integers(0, len(names.JOB_TITLES), k),
            created_at=created_c,
            archived_at=np.where(rng.random(k) < 0.05, created_c + uniform_seconds(rng, 30, 400, k), NEVER),
            ms_jitter=rng.integers(0, 1000, k),
        ))

    # -- deals and the engagements they become --------------------------------------------------
    def _new_deals(self, rng: np.random.Generator, m: int, m0: int, m1: int) -> None:
        clients = self._all("clients")
        alive = (clients["created_at"] < m1) & (clients["archived_at"] > m0)
        candidates = np.flatnonzero(alive)
        counts = rng.poisson(self.scale.deals_per_client_month, len(candidates))
        is_new = clients["created_at"][candidates] >= m0
        if m == 0:
            is_new[:] = True
        counts = counts + is_new
        client = np.repeat(candidates, counts)
        first_of_client = np.zeros(len(client), dtype=bool)
        if len(client):
            first_of_client[np.cumsum(counts)[counts > 0] - counts[counts > 0]] = True
            first_of_client &= np.repeat(is_new, counts)
        n = len(client)
        if n == 0:
            return
        created_client = clients["created_at"][client]
        if m == 0:
            opened = np.where(first_of_client, m0 - uniform_seconds(rng, 0, 150, n),
                              rng.integers(m0, m1, n))
        else:
            opened = np.where(first_of_client, created_client + uniform_seconds(rng, 0, 20, n),
                              rng.integers(m0, m1, n))
            opened = np.minimum(np.maximum(opened, m0), m1 - 1)
        opened = np.maximum(opened, created_client + 3600)
        stage_days = rng.gamma(2.0, 5.0, (n, len(DEAL_STAGES))) + 1
        stage_at = (opened[:, None] + (np.concatenate(
            [np.zeros((n, 1)), np.cumsum(stage_days, axis=1)[:, :-1]], axis=1) * DAY).astype(np.int64))
        archived_client = clients["archived_at"][client] < NEVER
        won = (rng.random(n) < 0.5) & ~archived_client
        lost_stage = rng.integers(1, len(DEAL_STAGES) + 1, n)  # stages reached before losing
        reached = np.where(won, len(DEAL_STAGES), lost_stage)
        close_at = stage_at[np.arange(n), reached - 1] + uniform_seconds(rng, 2, 12, n)
        kind = rng.choice(3, n, p=[0.5, 0.3, 0.2])
        months = np.select([kind == T_AND_M, kind == FIXED_FEE], [rng.integers(2, 10, n), rng.integers(2, 7, n)],
                           rng.integers(6, 13, n))
        team_size = np.where(kind == RETAINER, rng.integers(1, 4, n), rng.integers(2, 6, n))
        currency = clients["currency"][client]
        deal_first = self._append("deals", Table(
            client=client,
            opened_at=opened,
            stage_at=stage_at,
            reached=reached,
            won=won,
            close_at=close_at,
            expected_close_at=close_at + uniform_seconds(rng, -10, 20, n),
            kind=kind,
            months=months,
            currency=currency,
            service=rng.integers(0, 4, n),
            new_business=first_of_client,
            archived_at=np.where(~won & (rng.random(n) < 0.2), close_at + uniform_seconds(rng, 30, 120, n), NEVER),
            ms_jitter=rng.integers(0, 1000, n),
            amount=np.zeros(n),  # filled below from the planned team
        ))
        deals_table = self.chunks["deals"][-1]
        # Plan the team and the price for every deal, won or not: the CRM amount needs it.
        fx_factor = np.array([FX_START[c] for c in CURRENCIES])[currency]
        discount = rng.uniform(0.85, 1.0, n)
        intensity = np.where(kind == RETAINER, 0.35, 0.8)
        member_deal, member_user, member_rate, member_pm = [], [], [], []
        amounts = np.zeros(n)
        for i in range(n):
            team = rng.choice(len(self.users), int(team_size[i]), replace=False)
            rates = np.round(self.users["base_rate"][team] * fx_factor[i] * discount[i] / 5) * 5
            hours = months[i] * 21.7 * intensity[i] * 5.5 * self.users["availability"][team]
            value = float((rates * hours).sum())
            member_deal.append(np.full(len(team), i))
            member_user.append(team)
            member_rate.append(rates)
            member_pm.append(np.arange(len(team)) == 0)
            amounts[i] = value
        noise = np.select([kind == T_AND_M, kind == FIXED_FEE], [rng.uniform(0.85, 1.15, n), rng.uniform(0.9, 1.3, n)],
                          rng.uniform(0.8, 1.0, n))
        monthly_fee = np.round(amounts * noise / months / 500) * 500
        amounts = np.where(kind == RETAINER, monthly_fee * months, np.round(amounts * noise / 1000) * 1000)
        amounts = np.maximum(amounts, 5000.0)
        deals_table["amount"] = amounts
        self._engagements(rng, deal_first, deals_table, np.concatenate(member_deal),
                          np.concatenate(member_user), np.concatenate(member_rate), np.concatenate(member_pm))

    def _engagements(self, rng: np.random.Generator, deal_first: int, deals: Table, member_deal: np.ndarray,
                     member_user: np.ndarray, member_rate: np.ndarray, member_pm: np.ndarray) -> None:
        won_local = np.flatnonzero(deals["won"])
        n = len(won_local)
        if n == 0:
            return
        close = deals["close_at"][won_local]
        start_day = next_weekday(day_of(close + uniform_seconds(rng, 7, 21, n)))
        months = deals["months"][won_local]
        end_day = start_day + (months * 30.44).astype(np.int64) - 1
        amount = deals["amount"][won_local]
        draw = rng.random(n)
        p_cvm = self.rates["contract_value_mismatch"]
        p_wdwp = self.rates["won_deal_without_project"]
        fault = np.select([draw < p_cvm / 2, draw < p_cvm, draw < p_cvm + p_wdwp],
                          [EF_CONTRACT_AMENDED, EF_CONTRACT_TYPO, EF_NO_PROJECT], EF_NONE)
        factor = 1 + rng.choice([-1, 1], n) * rng.uniform(0.05, 0.25, n)
        so_amount = np.where(fault == EF_CONTRACT_TYPO, np.round(amount * factor / 100) * 100, amount)
        amended_amount = np.where(fault == EF_CONTRACT_AMENDED, np.round(amount * factor / 100) * 100, amount)
        first = self._append("engagements", Table(
            deal=won_local + deal_first,
            client=deals["client"][won_local],
            kind=deals["kind"][won_local],
            currency=deals["currency"][won_local],
            close_at=close,
            start_day=start_day,
            end_day=end_day,
            months=months,
            amount=amount,
            so_amount=so_amount,
            amended_amount=amended_amount,
            amended_at=np.where(fault == EF_CONTRACT_AMENDED, close + uniform_seconds(rng, 10, 40, n), NEVER),
            # after the customer master, which the ERP creates within two days of the first win
            so_created_at=close + uniform_seconds(rng, 2.5, 5, n),
            so_confirm_lag=uniform_seconds(rng, 0.05, 2, n),
            project_created_at=close + uniform_seconds(rng, 1, 10, n),
            project_archive_lag=uniform_seconds(rng, 14, 60, n),
            fault=fault,
            marks_by_hand=(deals["kind"][won_local] == T_AND_M)
            & (self.harvest_noise.random(n) < self.noise["harvest_marking"]),
        ))
        # Members of won deals become the engagement's team.
        local_to_global = np.full(len(deals), -1)
        local_to_global[won_local] = np.arange(first, first + n)
        keep = local_to_global[member_deal] >= 0
        self._append("members", Table(
            engagement=local_to_global[member_deal[keep]],
            user=member_user[keep],
            rate=member_rate[keep],
            is_pm=member_pm[keep],
        ))
        # Fixed-fee milestones and retainer fees are planned now; T&M is billed monthly later.
        billed_amount = np.where(fault == EF_CONTRACT_AMENDED, amended_amount,
                                 np.where(fault == EF_CONTRACT_TYPO, amount, so_amount))
        inv_eng, inv_issue_day, inv_amount, inv_kind, inv_label = [], [], [], [], []
        for i in range(n):
            kind = deals["kind"][won_local[i]]
            if kind == FIXED_FEE:
                days = [start_day[i], (start_day[i] + end_day[i]) // 2, end_day[i]]
                total = round(billed_amount[i] * 100)
                parts = [round(total * 0.3), round(total * 0.4)]
                parts.append(total - sum(parts))
                for k, (d, part) in enumerate(zip(days, parts)):
                    inv_eng.append(first + i)
                    inv_issue_day.append(d)
                    inv_amount.append(part)
                    inv_kind.append(MILESTONE)
                    inv_label.append(k + 1)
            elif kind == RETAINER:
                fee = round(billed_amount[i] / months[i] * 100)
                month0 = np.datetime64(int(start_day[i]), "D").astype("datetime64[M]")
                for k in range(int(months[i])):
                    d = start_day[i] if k == 0 else (month0 + k).astype("datetime64[D]").astype(np.int64)
                    inv_eng.append(first + i)
                    inv_issue_day.append(d)
                    inv_amount.append(fee)
                    inv_kind.append(RETAINER_FEE)
                    inv_label.append(k + 1)
        if inv_eng:
            eng = np.array(inv_eng)
            issue_day = next_weekday(np.array(inv_issue_day, dtype=np.int64))
            amount_minor = np.array(inv_amount, dtype=np.int64)
            kinds = np.array(inv_kind)
            engagement_rows = eng - first
            client = deals["client"][won_local][engagement_rows]
            currency = deals["currency"][won_local][engagement_rows]
            self._invoices(rng, eng, client, np.full(len(eng), -1), currency, kinds, np.array(inv_label),
                           issue_day, issue_day, issue_day, amount_minor,
                           line_descriptions=None)

    # -- time and expenses ------------------------------------------------------------------------
    def _active_members(self, m0: int, m1: int) -> tuple[Table, Table, np.ndarray, np.ndarray]:
        engagements = self._all("engagements")
        members = self._all("members")
        if not len(members):
            return engagements, members, np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        eng = members["engagement"]
        has_project = engagements["fault"][eng] != EF_NO_PROJECT
        first_day = np.maximum(engagements["start_day"][eng], m0 // DAY)
        stop_day = np.minimum(engagements["end_day"][eng] + 1, m1 // DAY)
        stop_day = np.where(has_project, stop_day, first_day)
        return engagements, members, first_day, stop_day

    def _time(self, rng: np.random.Generator, m0: int, m1: int) -> None:
        engagements, members, first_day, stop_day = self._active_members(m0, m1)
        if not len(members):
            return
        member, day = expand_ranges(first_day, stop_day)
        workday = weekday(day) < 5
        member, day = member[workday], day[workday]
        eng = members["engagement"][member]
        kind = engagements["kind"][eng]
        user = members["user"][member]
        p_log = np.where(kind == RETAINER, 0.4, 0.85) * self.users["availability"][user]
        logged = rng.random(len(day)) < p_log
        member, day, eng, kind, user = member[logged], day[logged], eng[logged], kind[logged], user[logged]
        n_days = len(day)
        daily = np.clip(rng.normal(6.0, 1.6, n_days), 1.0, 9.5)
        split = rng.random(n_days) < 0.35
        part = np.where(split, rng.uniform(0.3, 0.7, n_days), 1.0)
        # Every logged day yields one entry, split days a second one.
        idx = np.concatenate([np.arange(n_days), np.flatnonzero(split)])
        idx.sort(kind="stable")
        second = np.zeros(len(idx), dtype=bool)
        second[1:] = idx[1:] == idx[:-1]
        hours = np.where(second, daily[idx] * (1 - part[idx]), daily[idx] * part[idx])
        hours = np.maximum(np.round(hours * 4) / 4, 0.25)
        n = len(idx)
        task = rng.choice(len(TASKS), n, p=[0.25, 0.25, 0.12, 0.2, 0.13, 0.05])
        task_billable = np.array([t[1] for t in TASKS])[task]
        spent_day = day[idx]
        week_monday = spent_day - weekday(spent_day)
        approved_at = ((week_monday + 7) * DAY + uniform_seconds(rng, 0, 3, n)
                       + WORKING_HOURS_START + rng.integers(0, 8 * 3600, n))
        created_at = spent_day * DAY + 16 * 3600 + rng.integers(0, 30 * 3600, n)
        billable = (kind[idx] == T_AND_M) & task_billable
        entries = Table(
            member=member[idx],
            engagement=eng[idx],
            user=user[idx],
            task=task,
            spent_day=spent_day,
            hours=hours,
            billable=billable,
            rate=members["rate"][member[idx]],
            created_at=created_at,
            approved_at=approved_at,
            billed_at=np.full(n, NEVER, dtype=np.int64),
            marked_at=np.full(n, NEVER, dtype=np.int64),  # marked invoiced by hand in Harvest
            invoice=np.full(n, -1, dtype=np.int64),
            note=rng.integers(0, 12, n),
            deleted=np.zeros(n, dtype=bool),  # deleted through Harvest's API (`amend_time`)
        )
        corrections.plan(entries, self.correction_noise, self.noise.get("harvest_correction", 0.0))
        time_mistakes.plan_moves(entries, self.move_noise, self.noise.get("harvest_move", 0.0), engagements, members)
        copies = time_mistakes.copies(entries, self.copy_noise, self.noise.get("harvest_delete", 0.0))
        first = self._append("time_entries", entries)
        copies["original"] = copies["original"] + first
        self._append("entries_in_error", copies)
        if self.amend_time is not None:
            self.amend_time(entries, first)

    def _expenses(self, rng: np.random.Generator, m0: int, m1: int) -> None:
        engagements, members, first_day, stop_day = self._active_members(m0, m1)
        if not len(members):
            return
        active = (stop_day - first_day >= 5) & members["is_pm"] & (engagements["kind"][members["engagement"]] != RETAINER)
        chosen = np.flatnonzero(active & (rng.random(len(members)) < 0.3))
        n = len(chosen)
        if n == 0:
            return
        day = first_day[chosen] + (rng.random(n) * (stop_day[chosen] - first_day[chosen])).astype(np.int64)
        day = next_weekday(day)
        day = np.minimum(day, stop_day[chosen] - 1)
        eng = members["engagement"][chosen]
        category = rng.choice(len(EXPENSE_CATEGORIES), n, p=[0.4, 0.3, 0.2, 0.1])
        units = np.where(category == 3, np.round(rng.uniform(20, 300, n)), 0.0)
        cost = np.where(category == 3, np.round(units * 0.67, 2), np.round(rng.lognormal(5.0, 0.7, n), 2))
        week_monday = day - weekday(day)
        self._append("expenses", Table(
            engagement=eng,
            member=chosen,
            user=members["user"][chosen],
            category=category,
            spent_day=day,
            units=units,
            total_cost=cost,
            billable=engagements["kind"][eng] == T_AND_M,
            created_at=day * DAY + 18 * 3600 + rng.integers(0, 20 * 3600, n),
            approved_at=(week_monday + 7) * DAY + uniform_seconds(rng, 0, 3, n) + WORKING_HOURS_START,
            billed_at=np.full(n, NEVER, dtype=np.int64),
            invoice=np.full(n, -1, dtype=np.int64),
        ))

    # -- records nobody can tie to a client -----------------------------------------------------
    def _orphans(self, rng: np.random.Generator, m0: int, m1: int) -> None:
        existing = self.n["clients"]
        n = int(rng.poisson(self.rates["unmatched_record"] * existing / 12))
        if n == 0:
            return
        first_name, last_name = names.person_names(rng.integers(0, 10_000, n), rng.integers(0, 10_000, n))
        created = rng.integers(m0, m1, n)
        system = np.where(rng.random(n) < 0.7, ORPHAN_STRIPE, ORPHAN_HARVEST)
        currency = rng.choice(3, n, p=[0.6, 0.25, 0.15])
        first = self._append("orphans", Table(
            system=system,
            first_name=np.array(first_name, dtype=object),
            last_name=np.array(last_name, dtype=object),
            created_at=created,
            currency=currency,
        ))
        stripe_rows = np.flatnonzero(system == ORPHAN_STRIPE)
        if len(stripe_rows):
            k = len(stripe_rows)
            issue_day = next_weekday(day_of(created[stripe_rows] + uniform_seconds(rng, 1, 10, k)))
            amount = (np.round(rng.uniform(1500, 6000, k) / 50) * 50 * 100).astype(np.int64)
            self._invoices(rng, np.full(k, -1), np.full(k, -1), stripe_rows + first, currency[stripe_rows],
                           np.full(k, ORPHAN_WORKSHOP), np.ones(k, dtype=np.int64), issue_day, issue_day,
                           issue_day, amount, line_descriptions=None)


def simulate(config: WorldConfig, end: int, amend_time: Callable[[Table, int], None] | None = None) -> World:
    """The firm from the start of history through the month that contains `end`."""
    return FirmSimulator(config, amend_time).run(end)
