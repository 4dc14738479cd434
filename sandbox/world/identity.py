"""Identity traps: records that look alike but are different clients, and one client that looks
different in different places.

- `homonym`: a new client takes the name of an earlier one (another legal entity: its own VAT
  number and domain, perhaps the same country). Most share the exact name, the rest nearly
  ("Northwinds Logistics" beside "Northwind Logistics").
- `extra_domain`: the client bills from a second domain (its group's): Stripe's billing e-mail
  is on it and HubSpot lists it in `hs_additional_domains`.
- `vat_format`: the CRM holds the VAT number as people type it: with spaces, or without its
  country prefix. The ERP keeps the canonical form.
- `erp_archive`: finance archives (`active = false`) the ERP partner of a client four months
  after its last engagement ended; the client stays a client everywhere else.
- `crm_merge`: a rep types the client into HubSpot a second time (a duplicate while it lasts);
  days later someone merges it into the first: the second id is gone and the surviving company
  lists it in `hs_merged_object_ids`.
- `crm_restore`: someone archives the client's HubSpot company by mistake and restores it from
  the recycle bin days later: the same id, live again.
- `stripe_delete`: billing creates a second Stripe customer for the client by mistake (a
  duplicate while it lasts) and deletes it days later, before anything is billed to it: gone
  from Stripe's lists, retrieved as a tombstone, announced by a `customer.deleted` event.

Drawn per new client from the month's identity-noise stream; the first three never for a client
with a fault (whose records the faults already shape), so the rates move no fault.
"""

from __future__ import annotations

import numpy as np

from sandbox.world.config import DAY, NEVER

NEAR_SHARE = 0.4
VAT_SPACED, VAT_NO_PREFIX = 1, 2


def plan(clients: dict[str, np.ndarray], rng: np.random.Generator, rates: dict[str, float], first: int,
         earlier_clean: np.ndarray, taken: set[int], clean: np.ndarray, clients_created: np.ndarray,
         month_start: int) -> None:
    """Add the identity-noise columns to a chunk of new clients (`clients`, columns by name, rows
    `first`...), in place; `earlier_clean` are the global indices of earlier fault-free clients
    that may lend their name, `taken` those that already did (each lends it once)."""
    n = len(clean)
    u_homonym, u_near, pick = rng.random(n), rng.random(n), rng.integers(0, 2**31, n)
    u_domain, u_vat, vat_style = rng.random(n), rng.random(n), rng.integers(VAT_SPACED, VAT_NO_PREFIX + 1, n)
    homonym_of = np.full(n, -1, dtype=np.int64)
    near = np.zeros(n, dtype=bool)
    pool = [int(c) for c in earlier_clean]
    for k in range(n):
        if clean[k] and u_homonym[k] < rates["homonym"]:
            free = [c for c in pool if c not in taken]
            if free:
                target = free[int(pick[k]) % len(free)]
                taken.add(target)
                homonym_of[k] = target
                near[k] = u_near[k] < NEAR_SHARE
        if clean[k] and homonym_of[k] < 0:
            pool.append(first + k)
    clients["homonym_of"] = homonym_of
    clients["homonym_near"] = near
    clients["extra_domain"] = clean & (homonym_of < 0) & (u_domain < rates["extra_domain"])
    clients["vat_format"] = np.where(clean & (u_vat < rates["vat_format"]), vat_style, 0)
    clients["erp_archive"] = rng.random(n) < rates["erp_archive"]
    merged = clean & (homonym_of < 0) & (rng.random(n) < rates["crm_merge"])
    typed_at = np.maximum(clients_created, month_start) + (rng.uniform(20, 300, n) * DAY).astype(np.int64)
    clients["crm_duplicate_at"] = np.where(merged, typed_at, NEVER)
    clients["crm_merged_at"] = np.where(merged, typed_at + (rng.uniform(3, 20, n) * DAY).astype(np.int64), NEVER)
    mistaken = clean & (rng.random(n) < rates.get("crm_restore", 0.0))
    mistake_at = np.maximum(clients_created, month_start) + (rng.uniform(20, 300, n) * DAY).astype(np.int64)
    clients["crm_mistake_at"] = np.where(mistaken, mistake_at, NEVER)
    clients["crm_restored_at"] = np.where(mistaken, mistake_at + (rng.uniform(1, 10, n) * DAY).astype(np.int64), NEVER)
    in_error = clean & (rng.random(n) < rates.get("stripe_delete", 0.0))
    created_at = np.maximum(clients_created, month_start) + (rng.uniform(40, 300, n) * DAY).astype(np.int64)
    clients["stripe_extra_at"] = np.where(in_error, created_at, NEVER)
    clients["stripe_extra_deleted_at"] = np.where(in_error, created_at + (rng.uniform(1, 8, n) * DAY).astype(np.int64),
                                                  NEVER)


def homonym_name(target_base: str, near: bool) -> str:
    """The name a homonym takes from the client it shadows."""
    if not near:
        return target_base
    word, _, sector = target_base.partition(" ")
    return f"{word}s {sector}"


def homonym_domain(base: str, city: str, tld: str) -> str:
    """Another company of the same name has its own site: hyphenated, with its city."""
    words = "-".join("".join(ch for ch in part.lower() if ch.isalnum()) for part in base.split())
    return f"{words}-{''.join(ch for ch in city.lower() if ch.isalnum())}.{tld}"


def extra_domain(base: str, tld: str) -> str:
    compact = "".join(ch for ch in base.lower() if ch.isalnum())
    return f"{compact}-group.{tld}"


def typed_vat(vat: str, country: str, style: int) -> str:
    """A VAT number as someone typed it into the CRM (the US EIN has no prefix to drop)."""
    if style == 0 or country == "US" or not vat[:2].isalpha():
        return vat
    if style == VAT_NO_PREFIX:
        return vat[2:]
    body = vat[2:]
    return f"{vat[:2]} " + " ".join(body[i:i + 3] for i in range(0, len(body), 3))
