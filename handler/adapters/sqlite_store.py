"""Embedded SQLite idempotency store for Powertools ``idempotent_function``.

Powertools ships only DynamoDB and Redis layers; this one lets local runs, tests and single-host
deployments keep the same exactly-once semantics without a server. It mirrors
``DynamoDBPersistenceLayer``: the in-progress claim is one conditional write, a refused claim
returns the existing record (like ``ReturnValuesOnConditionCheckFailure=ALL_OLD``) so Powertools
needs no second read, and the stored record has the same attributes.

Concurrency: several threads and processes may share one file (connections as
``handler.adapters.sqlite_files`` opens them: WAL, busy timeout, one per thread and process), and
every write is a short autocommit statement.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import (
    STATUS_CONSTANTS,
    DataRecord,
)

from handler.adapters.sqlite_files import ThreadConnections

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Templates: {table} is filled once, in __init__, after the name passed _IDENTIFIER.
_SQL = {
    "create": "CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, status TEXT NOT NULL,"
    " expiration INTEGER NOT NULL, in_progress_expiration INTEGER, data TEXT, validation TEXT)",
    "index": "CREATE INDEX IF NOT EXISTS {table}_expiration ON {table} (expiration)",
    "select": "SELECT id, status, expiration, in_progress_expiration, data, validation"
    " FROM {table} WHERE id = ?",
    # The claim: insert, or overwrite only a dead row (expired, or INPROGRESS past its deadline).
    "claim": "INSERT INTO {table} AS t"
    " (id, status, expiration, in_progress_expiration, data, validation)"
    " VALUES (:id, :status, :expiration, :ipe, NULL, :validation)"
    " ON CONFLICT(id) DO UPDATE SET status = excluded.status, expiration = excluded.expiration,"
    " in_progress_expiration = excluded.in_progress_expiration, data = NULL,"
    " validation = excluded.validation"
    " WHERE t.expiration < :now OR (t.status = :inprogress"
    " AND t.in_progress_expiration IS NOT NULL AND t.in_progress_expiration < :now_ms)",
    # Without validation configured, the row keeps whatever hash it already has.
    "update": "INSERT INTO {table} AS t (id, status, expiration, data, validation)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET status = excluded.status,"
    " expiration = excluded.expiration, data = excluded.data,"
    " validation = coalesce(excluded.validation, t.validation)",
    "delete": "DELETE FROM {table} WHERE id = ?",
    "purge": "DELETE FROM {table} WHERE expiration < ?",
}


class SQLitePersistenceLayer(BasePersistenceLayer):
    """Powertools persistence layer backed by one SQLite file (columns as in the DynamoDB table)."""

    def __init__(self, path: str | os.PathLike[str], table_name: str = "idempotency") -> None:
        # The table name is interpolated into SQL, so only plain identifiers are accepted.
        if not _IDENTIFIER.match(table_name):
            raise ValueError(f"table_name must be a plain SQL identifier, got {table_name!r}")
        self.path = Path(path)
        self.table_name = table_name
        self._sql = {name: sql.format(table=table_name) for name, sql in _SQL.items()}
        self._files = ThreadConnections(path, (self._sql["create"], self._sql["index"]))
        super().__init__()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated

    def _connection(self) -> sqlite3.Connection:
        return self._files.get()

    def close(self) -> None:
        """Close the calling thread's connection (other threads keep theirs)."""
        self._files.close()

    @staticmethod
    def _row_to_record(row: tuple[str, str, int, int | None, str | None, str | None]) -> DataRecord:
        key, status, expiration, in_progress_expiration, data, validation = row
        return DataRecord(
            idempotency_key=key,
            status=status,
            expiry_timestamp=expiration,
            in_progress_expiry_timestamp=in_progress_expiration,
            response_data=data or "",
            payload_hash=validation or "",
        )

    def _select(self, conn: sqlite3.Connection, key: str) -> DataRecord | None:
        row = conn.execute(self._sql["select"], (key,)).fetchone()
        return None if row is None else self._row_to_record(row)

    def _get_record(self, idempotency_key: str) -> DataRecord:
        record = self._select(self._connection(), idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return record

    def _put_record(self, data_record: DataRecord) -> None:
        """Claim the key unless a live record holds it (same condition as the DynamoDB layer).

        The claim is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE``: it succeeds when the key
        is absent, expired, or INPROGRESS past its in-progress expiry (a crashed/timed-out worker).
        BEGIN IMMEDIATE only makes the follow-up read of a refused claim see the same row.
        """
        now = time.time()
        # Like dynamodb.py, a hash is stored only when validation is configured.
        validation = data_record.payload_hash if self.payload_validation_enabled else None
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            claimed = conn.execute(
                self._sql["claim"],
                {
                    "id": data_record.idempotency_key,
                    "status": data_record.status,
                    "expiration": data_record.expiry_timestamp,
                    "ipe": data_record.in_progress_expiry_timestamp,
                    "validation": validation or None,
                    "now": int(now),
                    "now_ms": int(now * 1000),
                    "inprogress": STATUS_CONSTANTS["INPROGRESS"],
                },
            ).rowcount
            old = None if claimed else self._select(conn, data_record.idempotency_key)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if claimed:
            return
        if old is None:  # pragma: no cover - impossible inside one write transaction
            raise IdempotencyItemAlreadyExistsError()
        # As in dynamodb.py: a different payload under a live key is a validation error, not a dup.
        self._validate_payload(data_payload=data_record, stored_data_record=old)
        self._save_to_cache(data_record=old)
        raise IdempotencyItemAlreadyExistsError(old_data_record=old)

    def _update_record(self, data_record: DataRecord) -> None:
        """Store the result. An upsert, like DynamoDB ``update_item``, so a purged row comes back.

        The validation hash is rewritten too; the Redis layer drops it here, which breaks
        payload validation on identical repeats.
        """
        self._connection().execute(
            self._sql["update"],
            (
                data_record.idempotency_key,
                data_record.status,
                data_record.expiry_timestamp,
                data_record.response_data,
                data_record.payload_hash if self.payload_validation_enabled else None,
            ),
        )

    def _delete_record(self, data_record: DataRecord) -> None:
        self._connection().execute(self._sql["delete"], (data_record.idempotency_key,))

    def purge_expired(self, now: float | None = None) -> int:
        """Delete rows past ``expiration`` (epoch s) and return how many went.

        This is only housekeeping, the equivalent of DynamoDB TTL: Powertools judges expiry from
        the stored timestamps, so an expired row that is never purged is simply overwritten by
        the next claim of its key.
        """
        cutoff = int(time.time() if now is None else now)
        return self._connection().execute(self._sql["purge"], (cutoff,)).rowcount
