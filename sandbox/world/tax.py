"""VAT as the firm's entities charge it on services to business clients.

- Concord Advisory Ltd (UK) charges UK clients 20%.
- Concord Advisory GmbH (DE) charges German clients 19%. A French or Dutch client is
  cross-border: its invoices are reverse-charged (0%, the client accounts for the VAT) when the
  client gave a VAT number the firm validated, else they carry the client country's standard
  rate (FR 20%, NL 21%), as an entity registered there for VAT would charge.
- Concord Advisory Inc. (US) charges no tax on services.

Amounts are pre-tax everywhere a sale is priced (deals, sale orders, invoice lines); each
invoice line then carries its tax, rounded half up to the cent as Stripe rounds it, and an
invoice's tax is the sum of its lines'. Credit notes carry tax at their invoice's rate.
"""

from __future__ import annotations

import numpy as np

# treatment of a client's invoices
NO_TAX, STANDARD, REVERSE_CHARGE = 0, 1, 2
TREATMENTS = ("none", "standard", "reverse_charge")

STANDARD_RATE_BP = {"GB": 2000, "DE": 1900, "FR": 2000, "NL": 2100, "US": 0}
ENTITY_COUNTRY = ("US", "GB", "DE")
REVERSE_CHARGE_NOTE = "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC)"
# share of cross-border clients whose VAT number the firm validated (others pay the local rate)
VALIDATED_VAT_SHARE = 0.5


def client_treatment(country: np.ndarray, entity: np.ndarray, taxed_draw: np.ndarray, validated_draw: np.ndarray,
                     rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(treatment, rate in basis points) per client; `rate` is the share of clients of a
    VAT-registered entity whose invoices carry VAT at all (the `tax` noise rate)."""
    local = np.array([STANDARD_RATE_BP[c] for c in country.tolist()], dtype=np.int64)
    domestic = np.array([ENTITY_COUNTRY[e] == c for e, c in zip(entity.tolist(), country.tolist())], dtype=bool)
    registered = (entity != 0) & (taxed_draw < rate)
    reverse = registered & ~domestic & (validated_draw < VALIDATED_VAT_SHARE)
    treatment = np.where(~registered, NO_TAX, np.where(reverse, REVERSE_CHARGE, STANDARD))
    return treatment, np.where(treatment == STANDARD, local, 0)


def tax_on(amount_minor: np.ndarray, rate_bp: np.ndarray) -> np.ndarray:
    """Tax in minor units on pre-tax amounts, rounded half up (away from zero) to the cent."""
    amount = np.asarray(amount_minor, dtype=np.int64)
    exact = np.abs(amount) * np.asarray(rate_bp, dtype=np.int64)
    return (np.sign(amount) * ((exact + 5_000) // 10_000)).astype(np.int64)
