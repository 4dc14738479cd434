"""The ERP database: the Odoo tables and columns the firm's finance team works in.

Column names and types follow Odoo (see `vendor_specs/odoo/erp_model_fields.json`): Many2one
fields are integer `<field>_id` columns, Monetary/Float are numeric, Datetime is a timestamp
without time zone holding UTC, and every table carries Odoo's `create_uid`, `create_date`,
`write_uid`, `write_date`. The same metadata creates the schema in SQLite (the default) and in
PostgreSQL (given a URL).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Boolean, Column, Date, DateTime, Double, ForeignKey, Integer, MetaData, Numeric, String, Table, Text,
    UniqueConstraint, create_engine,
)
from sqlalchemy.engine import Engine

metadata = MetaData()

MONEY = Numeric(16, 2)


def _audit() -> list[Column]:
    return [
        Column("create_uid", Integer),
        Column("create_date", DateTime, nullable=False),
        Column("write_uid", Integer),
        Column("write_date", DateTime, nullable=False, index=True),
    ]


res_currency = Table(
    "res_currency", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(3), nullable=False, unique=True),
    Column("full_name", String),
    Column("symbol", String, nullable=False),
    Column("rounding", Double, nullable=False),
    Column("decimal_places", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    *_audit(),
)

res_country = Table(
    "res_country", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("code", String(2), nullable=False, unique=True),
    Column("currency_id", Integer, ForeignKey("res_currency.id")),
    *_audit(),
)

res_partner = Table(
    "res_partner", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("complete_name", String),
    Column("parent_id", Integer, ForeignKey("res_partner.id")),
    Column("is_company", Boolean, nullable=False),
    Column("ref", String, index=True),
    Column("vat", String, index=True),
    Column("company_id", Integer),
    Column("country_id", Integer, ForeignKey("res_country.id")),
    Column("street", String),
    Column("street2", String),
    Column("zip", String),
    Column("city", String),
    Column("email", String),
    Column("phone", String),
    Column("website", String),
    Column("lang", String),
    Column("active", Boolean, nullable=False),
    Column("type", String, nullable=False),
    Column("commercial_partner_id", Integer),
    Column("commercial_company_name", String),
    Column("customer_rank", Integer, nullable=False),
    Column("supplier_rank", Integer, nullable=False),
    *_audit(),
)

res_company = Table(
    "res_company", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False, unique=True),
    Column("partner_id", Integer, ForeignKey("res_partner.id"), nullable=False),
    Column("currency_id", Integer, ForeignKey("res_currency.id"), nullable=False),
    Column("parent_id", Integer),
    Column("active", Boolean, nullable=False),
    Column("sequence", Integer),
    Column("email", String),
    Column("phone", String),
    *_audit(),
)

res_currency_rate = Table(
    "res_currency_rate", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Date, nullable=False, index=True),
    Column("rate", Double, nullable=False),
    Column("currency_id", Integer, ForeignKey("res_currency.id"), nullable=False),
    Column("company_id", Integer, ForeignKey("res_company.id")),
    UniqueConstraint("name", "currency_id", "company_id", name="res_currency_rate_unique_name_per_day"),
    *_audit(),
)

account_journal = Table(
    "account_journal", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("code", String, nullable=False),
    Column("type", String, nullable=False),
    Column("company_id", Integer, ForeignKey("res_company.id"), nullable=False),
    Column("currency_id", Integer),
    *_audit(),
)

sale_order = Table(
    "sale_order", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("company_id", Integer, ForeignKey("res_company.id"), nullable=False),
    Column("partner_id", Integer, ForeignKey("res_partner.id"), nullable=False),
    Column("partner_invoice_id", Integer, ForeignKey("res_partner.id"), nullable=False),
    Column("state", String, nullable=False),
    Column("locked", Boolean, nullable=False),
    Column("date_order", DateTime, nullable=False),
    Column("validity_date", Date),
    Column("commitment_date", DateTime),
    Column("client_order_ref", String),
    Column("origin", String),
    Column("currency_id", Integer, ForeignKey("res_currency.id")),
    Column("currency_rate", Double),
    Column("amount_untaxed", MONEY),
    Column("amount_tax", MONEY),
    Column("amount_total", MONEY),
    Column("invoice_status", String),
    Column("note", Text),
    *_audit(),
)

sale_order_line = Table(
    "sale_order_line", metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", Integer, ForeignKey("sale_order.id", ondelete="CASCADE"), nullable=False),
    Column("sequence", Integer),
    Column("company_id", Integer),
    Column("currency_id", Integer),
    Column("order_partner_id", Integer),
    Column("state", String),
    Column("display_type", String),
    Column("name", Text, nullable=False),
    Column("product_uom_qty", Double, nullable=False),
    Column("price_unit", Double, nullable=False),
    Column("discount", Double),
    Column("price_subtotal", MONEY),
    Column("price_tax", Double),
    Column("price_total", MONEY),
    Column("qty_delivered", Double),
    Column("qty_invoiced", Double),
    Column("qty_to_invoice", Double),
    Column("invoice_status", String),
    Column("is_downpayment", Boolean),
    *_audit(),
)

account_move = Table(
    "account_move", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String),
    Column("ref", String, index=True),
    Column("date", Date, nullable=False),
    Column("state", String, nullable=False),
    Column("move_type", String, nullable=False),
    Column("journal_id", Integer, ForeignKey("account_journal.id"), nullable=False),
    Column("company_id", Integer, ForeignKey("res_company.id")),
    Column("partner_id", Integer, ForeignKey("res_partner.id")),
    Column("commercial_partner_id", Integer),
    Column("invoice_date", Date),
    Column("invoice_date_due", Date),
    Column("payment_reference", String),
    Column("currency_id", Integer, ForeignKey("res_currency.id"), nullable=False),
    Column("invoice_currency_rate", Double),
    Column("amount_untaxed", MONEY),
    Column("amount_tax", MONEY),
    Column("amount_total", MONEY),
    Column("amount_residual", MONEY),
    Column("amount_untaxed_signed", MONEY),
    Column("amount_tax_signed", MONEY),
    Column("amount_total_signed", MONEY),
    Column("amount_total_in_currency_signed", MONEY),
    Column("amount_residual_signed", MONEY),
    Column("payment_state", String),
    Column("reversed_entry_id", Integer, ForeignKey("account_move.id")),
    Column("invoice_origin", String),
    *_audit(),
)

account_payment = Table(
    "account_payment", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String),
    Column("date", Date, nullable=False),
    Column("move_id", Integer),
    Column("journal_id", Integer, ForeignKey("account_journal.id"), nullable=False),
    Column("company_id", Integer, ForeignKey("res_company.id"), nullable=False),
    Column("state", String, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("payment_type", String, nullable=False),
    Column("partner_type", String, nullable=False),
    Column("partner_id", Integer, ForeignKey("res_partner.id")),
    Column("currency_id", Integer, ForeignKey("res_currency.id")),
    Column("memo", String),
    Column("payment_reference", String),
    Column("is_reconciled", Boolean, nullable=False),
    Column("is_matched", Boolean, nullable=False),
    Column("amount_company_currency_signed", MONEY),
    *_audit(),
)

# Odoo's many2many between invoices and the payments matched to them (matched_payment_ids).
account_move__account_payment = Table(
    "account_move__account_payment", metadata,
    Column("invoice_id", Integer, ForeignKey("account_move.id"), primary_key=True),
    Column("payment_id", Integer, ForeignKey("account_payment.id"), primary_key=True),
)

TABLES = [t.name for t in metadata.sorted_tables]


def engine_of(data_dir: str | Path) -> Engine:
    """An engine on the ERP database of a sandbox data dir."""
    from sandbox import store

    con = store.connect(Path(data_dir))
    try:
        return engine_for(store.erp_url(con, Path(data_dir)))
    finally:
        con.close()


def engine_for(url: str) -> Engine:
    """An engine on the ERP database; SQLite files get WAL so readers never block the writer."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # noqa: ANN001 - SQLAlchemy's hook signature
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    return engine


def create(engine: Engine, *, reset: bool = False) -> None:
    """Create the ERP tables; `reset` drops any existing ones first (a fresh `generate`)."""
    if reset:
        metadata.drop_all(engine)
    metadata.create_all(engine)
