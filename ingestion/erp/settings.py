"""The ERP tables Concord reads and how it reads them."""

from __future__ import annotations

# Tables read incrementally on write_date, with their primary keys.
TABLES: dict[str, str] = {
    "res_currency": "id",
    "res_currency_rate": "id",
    "res_country": "id",
    "res_company": "id",
    "res_partner": "id",
    "account_journal": "id",
    "sale_order": "id",
    "sale_order_line": "id",
    "account_move": "id",
    "account_payment": "id",
}
# Odoo's many2many link tables have no write_date: they are read whole each run.
LINK_TABLES: dict[str, tuple[str, ...]] = {
    "account_move__account_payment": ("invoice_id", "payment_id"),
}
CURSOR = "write_date"
# write_date is the start of the writing transaction: a long transaction commits rows stamped
# earlier than rows already read. Each run re-reads this far behind the newest write_date seen.
LOOKBACK_SECONDS = 3600
CHUNK_SIZE = 50_000
