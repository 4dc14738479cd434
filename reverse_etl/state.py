"""Reverse ETL's state, kept in the warehouse (schema `reverse_etl`), never in a local folder a
fresh container would lose.

| table | one row per | what |
|---|---|---|
| `confirmed_values` | object type, record, property | the value the CRM last *accepted* (as sent), when and in which run |
| `dead_letters` | object type, record | a record the CRM rejected: last payload, error, attempts, `pending` or `parked` |
| `audit_log` | attempted write of a property | run, batch, HubSpot correlation id, old → new, status, error, when sent and answered |
| `runs` | push or dry run | when, mode, status and counts |
| `timeline_notes` | business event | the HubSpot note announcing it; `sending` while the create's outcome is unknown, then `created` with the note id |

DuckDB admits one read-write process per file, and every writer takes ingestion's
`WriterLock` (the same lock file) first. Opening the file costs more than a batch's HTTP call,
so a push holds it through a `Session`, handed back to other writers every few seconds; each
step is one transaction, committed before the next HTTP call. A value is written to
`confirmed_values` only in the transaction that records the CRM's acceptance of it.

Audit statuses: `sending` (written before the request goes out; a crash leaves it, and the next
push marks it `interrupted`), `accepted`, `rejected` (that record, inside a 207),
`unconfirmed` (the answer did not mention it), `batch_rejected` (a 4xx for the whole batch,
which is then split), `deferred` (the daily limit), `failed` (retries ran out).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import duckdb

from ingestion.warehouse import FileLock, WriterLock, open_read_write
from reverse_etl.errors import ReverseEtlError

SCHEMA = "reverse_etl"

DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.confirmed_values (
        object_type VARCHAR NOT NULL,
        record_id VARCHAR NOT NULL,
        property VARCHAR NOT NULL,
        value VARCHAR NOT NULL,
        confirmed_at TIMESTAMPTZ NOT NULL,
        run_id VARCHAR NOT NULL,
        PRIMARY KEY (object_type, record_id, property))""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.dead_letters (
        object_type VARCHAR NOT NULL,
        record_id VARCHAR NOT NULL,
        payload VARCHAR NOT NULL,
        error_category VARCHAR,
        error_message VARCHAR,
        attempts INTEGER NOT NULL,
        status VARCHAR NOT NULL,
        first_failed_at TIMESTAMPTZ NOT NULL,
        last_failed_at TIMESTAMPTZ NOT NULL,
        last_run_id VARCHAR NOT NULL,
        PRIMARY KEY (object_type, record_id))""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.audit_log (
        run_id VARCHAR NOT NULL,
        batch_id VARCHAR NOT NULL,
        correlation_id VARCHAR,
        object_type VARCHAR NOT NULL,
        record_id VARCHAR NOT NULL,
        property VARCHAR NOT NULL,
        old_value VARCHAR,
        new_value VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        error VARCHAR,
        attempted_at TIMESTAMPTZ NOT NULL,
        answered_at TIMESTAMPTZ)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.runs (
        run_id VARCHAR PRIMARY KEY,
        object_type VARCHAR NOT NULL,
        mode VARCHAR NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ,
        status VARCHAR NOT NULL,
        confirmed_by_operator BOOLEAN NOT NULL,
        first_push BOOLEAN,
        total_records INTEGER,
        changed INTEGER,
        sent INTEGER,
        unchanged INTEGER,
        rejected INTEGER,
        pending INTEGER,
        parked INTEGER,
        write_calls INTEGER,
        requests INTEGER,
        rate_limited INTEGER,
        message VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.timeline_notes (
        event_key VARCHAR PRIMARY KEY,
        hubspot_company_id VARCHAR NOT NULL,
        note_id VARCHAR,
        status VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        batch_id VARCHAR NOT NULL,
        attempted_at TIMESTAMPTZ NOT NULL,
        created_at TIMESTAMPTZ)""",
)

def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@contextmanager
def connect(warehouse: Path, *, lock_timeout_s: float = 3600.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse, read-write, under the writers' lock, with the state schema in place; closed on exit."""
    with WriterLock(warehouse, timeout_s=lock_timeout_s):
        con = open_read_write(warehouse)
        try:
            for statement in DDL:
                con.execute(statement)
            yield con
        finally:
            con.close()


class Session:
    """The warehouse for the length of one push: opened once, with the writers' lock, and closed
    for a moment every `hold_s` so a load or a dbt build waiting on the lock gets its turn."""

    YIELD_S = 0.3  # longer than a waiting WriterLock's poll interval

    def __init__(self, warehouse: Path, *, lock_timeout_s: float, hold_s: float = 5.0):
        self.warehouse = warehouse
        self.lock_timeout_s = lock_timeout_s
        self.hold_s = hold_s
        self._lock: WriterLock | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._opened = 0.0
        self._schema_ready = False

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The open connection (reopened when held longer than `hold_s`)."""
        if self._con is not None and time.monotonic() - self._opened > self.hold_s:
            self.close()
            time.sleep(self.YIELD_S)
        if self._con is None:
            lock = WriterLock(self.warehouse, timeout_s=self.lock_timeout_s)
            lock.__enter__()
            try:
                self._con = open_read_write(self.warehouse)
            except BaseException:
                lock.__exit__()
                raise
            self._lock, self._opened = lock, time.monotonic()
            if not self._schema_ready:
                for statement in DDL:
                    self._con.execute(statement)
                self._schema_ready = True
        yield self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._lock is not None:
            self._lock.__exit__()
            self._lock = None


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


class PushInProgress(ReverseEtlError):
    """Another push holds the push lock longer than `lock_timeout_s`."""


class PushLock(FileLock):
    """One push at a time per warehouse: the CRM budget and the state are shared."""

    holder = "another reverse-ETL push"

    def __init__(self, warehouse: Path, timeout_s: float):
        super().__init__(warehouse.with_name(warehouse.name + ".reverse_etl.lock"), timeout_s)

    def timed_out(self) -> Exception:
        return PushInProgress(f"another reverse-ETL push holds {self.path}")


# --- reads ------------------------------------------------------------------------------------


def confirmed_values(con: duckdb.DuckDBPyConnection, object_type: str) -> dict[str, dict[str, str]]:
    """record id -> {property: the value the CRM last accepted}."""
    out: dict[str, dict[str, str]] = {}
    for record_id, prop, value in con.execute(
            f"SELECT record_id, property, value FROM {SCHEMA}.confirmed_values WHERE object_type = ?",
            [object_type]).fetchall():
        out.setdefault(record_id, {})[prop] = value
    return out


@dataclass(frozen=True)
class DeadLetter:
    object_type: str
    record_id: str
    payload: dict[str, str]
    error_category: str | None
    error_message: str | None
    attempts: int
    status: str  # pending | parked
    first_failed_at: dt.datetime
    last_failed_at: dt.datetime
    last_run_id: str


def dead_letters(con: duckdb.DuckDBPyConnection, object_type: str | None = None,
                 status: str | None = None) -> list[DeadLetter]:
    rows = con.execute(
        f"""SELECT object_type, record_id, payload, error_category, error_message, attempts, status,
                   first_failed_at, last_failed_at, last_run_id
            FROM {SCHEMA}.dead_letters
            WHERE (? IS NULL OR object_type = ?) AND (? IS NULL OR status = ?)
            ORDER BY object_type, last_failed_at, record_id""",
        [object_type, object_type, status, status]).fetchall()
    return [DeadLetter(r[0], r[1], json.loads(r[2]), *r[3:]) for r in rows]


# --- writes -----------------------------------------------------------------------------------


def close_interrupted(con: duckdb.DuckDBPyConnection) -> int:
    """Mark what a killed push left in flight: its runs and its `sending` audit rows."""
    with transaction(con):
        (n,) = con.execute(f"SELECT count(*) FROM {SCHEMA}.audit_log WHERE status = 'sending'").fetchone()
        con.execute(f"UPDATE {SCHEMA}.audit_log SET status = 'interrupted', "
                    f"error = 'the push stopped before HubSpot answered' WHERE status = 'sending'")
        con.execute(f"UPDATE {SCHEMA}.runs SET status = 'interrupted', "
                    f"message = 'the process stopped before the run finished' WHERE status = 'running'")
    return n


def record_run(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> None:
    """Insert or replace a `runs` row (keys: the table's columns)."""
    columns = list(run)
    con.execute(f"INSERT OR REPLACE INTO {SCHEMA}.runs ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})", [run[c] for c in columns])


def resolve_dead_letters(con: duckdb.DuckDBPyConnection, object_type: str, record_ids: Iterable[str]) -> None:
    """Forget dead letters that need no retry (the record was accepted, or no longer differs)."""
    ids = list(record_ids)
    if ids:
        con.execute(f"DELETE FROM {SCHEMA}.dead_letters WHERE object_type = ? AND list_contains(?, record_id)",
                    [object_type, ids])


def log_sending(con: duckdb.DuckDBPyConnection, *, run_id: str, batch_id: str, object_type: str,
                rows: list[tuple[str, str, str | None, str]]) -> None:
    """Audit rows `(record_id, property, old, new)` of a batch about to be sent, status `sending`."""
    if not rows:
        return
    record_ids, props, olds, news = (list(col) for col in zip(*rows))
    con.execute(
        f"""INSERT INTO {SCHEMA}.audit_log
                (run_id, batch_id, object_type, record_id, property, old_value, new_value, status, attempted_at)
            SELECT $run_id, $batch_id, $object_type, unnest($record_ids), unnest($props), unnest($olds),
                   unnest($news), 'sending', $at""",
        {"run_id": run_id, "batch_id": batch_id, "object_type": object_type, "record_ids": record_ids,
         "props": props, "olds": olds, "news": news, "at": now()})


@dataclass(frozen=True)
class RecordOutcome:
    """What happened to one record of a batch; `payload` is what was sent for it."""

    record_id: str
    payload: dict[str, str]
    status: str  # accepted | rejected | unconfirmed | batch_rejected | deferred | failed
    error_category: str | None = None
    error_message: str | None = None


def record_outcomes(con: duckdb.DuckDBPyConnection, *, run_id: str, batch_id: str, object_type: str,
                    correlation_id: str | None, outcomes: list[RecordOutcome], max_attempts: int) -> None:
    """One transaction: the audit rows of the batch answered, accepted values confirmed and their
    dead letters resolved, rejected records dead-lettered (parked at `max_attempts`)."""
    at = now()
    accepted = [o for o in outcomes if o.status == "accepted"]
    with transaction(con):
        answer_audit(con, batch_id=batch_id, correlation_id=correlation_id, outcomes=outcomes, at=at)
        confirmed = [(o.record_id, prop, value) for o in accepted for prop, value in o.payload.items()]
        if confirmed:
            ids, props, values = (list(col) for col in zip(*confirmed))
            con.execute(
                f"""INSERT INTO {SCHEMA}.confirmed_values
                    SELECT $object_type, unnest($ids), unnest($props), unnest($values), $at, $run_id
                    ON CONFLICT (object_type, record_id, property) DO UPDATE
                    SET value = excluded.value, confirmed_at = excluded.confirmed_at, run_id = excluded.run_id""",
                {"object_type": object_type, "ids": ids, "props": props, "values": values, "at": at,
                 "run_id": run_id})
        resolve_dead_letters(con, object_type, (o.record_id for o in accepted))
        dead_letter(con, object_type=object_type, run_id=run_id, outcomes=outcomes, max_attempts=max_attempts, at=at)


def answer_audit(con: duckdb.DuckDBPyConnection, *, batch_id: str, correlation_id: str | None,
                 outcomes: list[RecordOutcome], at: dt.datetime) -> None:
    """The audit rows of a batch take the statuses and errors of its answer."""
    con.execute(
        f"""UPDATE {SCHEMA}.audit_log AS a
            SET status = o.status, error = o.error, correlation_id = $correlation_id, answered_at = $at
            FROM (SELECT unnest($ids) AS record_id, unnest($statuses) AS status, unnest($errors) AS error) AS o
            WHERE a.batch_id = $batch_id AND a.record_id = o.record_id""",
        {"ids": [o.record_id for o in outcomes], "statuses": [o.status for o in outcomes],
         "errors": [_error_text(o) for o in outcomes], "correlation_id": correlation_id, "at": at,
         "batch_id": batch_id})


def dead_letter(con: duckdb.DuckDBPyConnection, *, object_type: str, run_id: str, outcomes: list[RecordOutcome],
                max_attempts: int, at: dt.datetime) -> None:
    """The `rejected` outcomes become dead letters, or count one more attempt (parked at `max_attempts`)."""
    rejected = [o for o in outcomes if o.status == "rejected"]
    if rejected:
        con.execute(
            f"""INSERT INTO {SCHEMA}.dead_letters
                SELECT $object_type, unnest($ids), unnest($payloads), unnest($categories), unnest($messages),
                       1, CASE WHEN 1 >= $max_attempts THEN 'parked' ELSE 'pending' END, $at, $at, $run_id
                ON CONFLICT (object_type, record_id) DO UPDATE SET
                    payload = excluded.payload, error_category = excluded.error_category,
                    error_message = excluded.error_message, attempts = dead_letters.attempts + 1,
                    status = CASE WHEN dead_letters.attempts + 1 >= $max_attempts THEN 'parked'
                                  ELSE 'pending' END,
                    last_failed_at = excluded.last_failed_at, last_run_id = excluded.last_run_id""",
            {"object_type": object_type, "ids": [o.record_id for o in rejected],
             "payloads": [json.dumps(o.payload, sort_keys=True) for o in rejected],
             "categories": [o.error_category for o in rejected],
             "messages": [o.error_message for o in rejected], "max_attempts": max_attempts, "at": at,
             "run_id": run_id})


def note_ledger(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, dt.datetime]]:
    """event key -> (`sending` | `created`, when the note was last attempted)."""
    return {key: (status, at) for key, status, at in con.execute(
        f"SELECT event_key, status, attempted_at FROM {SCHEMA}.timeline_notes").fetchall()}


def log_note_sending(con: duckdb.DuckDBPyConnection, *, run_id: str, batch_id: str,
                     notes: list[tuple[str, str]]) -> None:
    """Notes `(event key, company id)` about to be created: in doubt until HubSpot's answer is recorded."""
    keys, companies = (list(col) for col in zip(*notes))
    con.execute(
        f"""INSERT INTO {SCHEMA}.timeline_notes (event_key, hubspot_company_id, status, run_id, batch_id, attempted_at)
            SELECT unnest($keys), unnest($companies), 'sending', $run_id, $batch_id, $at
            ON CONFLICT (event_key) DO UPDATE SET status = 'sending', note_id = NULL, run_id = excluded.run_id,
                batch_id = excluded.batch_id, attempted_at = excluded.attempted_at""",
        {"keys": keys, "companies": companies, "run_id": run_id, "batch_id": batch_id, "at": now()})


def record_notes(con: duckdb.DuckDBPyConnection, *, run_id: str, batch_id: str,
                 created: dict[str, tuple[str, str]], not_created: Iterable[str] = ()) -> None:
    """Notes HubSpot holds (`event key -> (note id, company id)`) become `created`; creates HubSpot
    certainly did not carry out (refused, rate limited) leave the ledger: plain pending again."""
    if created:
        con.execute(
            f"""INSERT INTO {SCHEMA}.timeline_notes
                SELECT unnest($keys), unnest($companies), unnest($ids), 'created', $run_id, $batch_id, $at, $at
                ON CONFLICT (event_key) DO UPDATE SET status = 'created', note_id = excluded.note_id,
                    created_at = excluded.created_at""",
            {"keys": list(created), "ids": [note for note, _ in created.values()],
             "companies": [company for _, company in created.values()], "run_id": run_id, "batch_id": batch_id,
             "at": now()})
    gone = list(not_created)
    if gone:
        con.execute(f"DELETE FROM {SCHEMA}.timeline_notes WHERE list_contains(?, event_key)", [gone])


def _error_text(outcome: RecordOutcome) -> str | None:
    if outcome.error_category is None and outcome.error_message is None:
        return None
    return f"{outcome.error_category or 'ERROR'}: {outcome.error_message or ''}"


def requeue(con: duckdb.DuckDBPyConnection, object_type: str | None = None,
            record_ids: list[str] | None = None) -> int:
    """Parked dead letters back to `pending` with their attempts reset; returns how many."""
    with transaction(con):
        (n,) = con.execute(
            f"""SELECT count(*) FROM {SCHEMA}.dead_letters WHERE status = 'parked'
                AND ($object_type IS NULL OR object_type = $object_type)
                AND ($ids IS NULL OR list_contains($ids, record_id))""",
            {"object_type": object_type, "ids": record_ids}).fetchone()
        con.execute(
            f"""UPDATE {SCHEMA}.dead_letters SET status = 'pending', attempts = 0 WHERE status = 'parked'
                AND ($object_type IS NULL OR object_type = $object_type)
                AND ($ids IS NULL OR list_contains($ids, record_id))""",
            {"object_type": object_type, "ids": record_ids})
    return n
