"""The ERP (an Odoo-shaped SQL database): customers, contracts, the AR ledger, FX rates.

Read through dlt's `sql_database` with the Arrow backend, incrementally on `write_date` with a
look-back overlap and merged on primary keys, so rows re-read in the overlap land once. SQLite
by default, PostgreSQL (or any SQLAlchemy URL) through `SOURCES__ERP__CREDENTIALS`.
"""

from __future__ import annotations

import dlt
from dlt.extract.resource import DltResource
from dlt.sources.sql_database import sql_table

from ingestion.erp.settings import CHUNK_SIZE, CURSOR, LINK_TABLES, LOOKBACK_SECONDS, TABLES

# Enough to build the source's resources without a database (tables are reflected only when
# read), for tools that need the source's shape before any settings exist.
PLACEHOLDER_CREDENTIALS = "sqlite://"


@dlt.source(name="erp")
def source(credentials: str = dlt.secrets.value, lookback_seconds: int = LOOKBACK_SECONDS) -> list[DltResource]:
    """Every ERP table Concord uses.

    Args:
        credentials: SQLAlchemy URL of the ERP database (`SOURCES__ERP__CREDENTIALS`).
        lookback_seconds: how far behind the newest `write_date` seen each run re-reads.
    """
    incremental = [
        sql_table(credentials=credentials, table=table, backend="pyarrow", chunk_size=CHUNK_SIZE,
                  defer_table_reflect=True, write_disposition="merge", primary_key=key,
                  incremental=dlt.sources.incremental(CURSOR, lag=lookback_seconds, row_order="asc"))
        for table, key in TABLES.items()
    ]
    whole = [
        sql_table(credentials=credentials, table=table, backend="pyarrow", chunk_size=CHUNK_SIZE,
                  defer_table_reflect=True, write_disposition="replace", primary_key=list(key))
        for table, key in LINK_TABLES.items()
    ]
    return incremental + whole
