"""Build the Powertools idempotency store named by the ``IDEMPOTENCY_STORE`` setting.

One URL picks the backend so that tests, local runs and AWS differ only in configuration:

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: embedded file store.
- ``dynamodb://TABLE_NAME``: Powertools DynamoDB layer; boto3 itself honours
  ``AWS_ENDPOINT_URL_DYNAMODB`` / ``AWS_ENDPOINT_URL`` (moto, DynamoDB Local).
- ``redis://[user:password@]host[:port][/db]`` (plain) or ``rediss://...`` (TLS).

boto3 and redis are imported inside their branch so the SQLite path does not pay for them.
Error messages never contain the URL's credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

SETTING = "IDEMPOTENCY_STORE"
ACCEPTED_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, dynamodb://TABLE_NAME, "
    "redis://[user:password@]host[:port][/db], rediss://[user:password@]host[:port][/db]"
)
_DYNAMODB_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


class StoreUrlError(ValueError):
    """``IDEMPOTENCY_STORE`` is malformed or names an unknown backend."""


@dataclass(frozen=True)
class SQLiteStore:
    path: str


@dataclass(frozen=True)
class DynamoDBStore:
    table_name: str


@dataclass(frozen=True)
class RedisStore:
    host: str
    port: int
    db: int
    ssl: bool
    username: str = ""
    password: str = field(default="", repr=False)  # repr=False: never printed or logged


StoreSpec = SQLiteStore | DynamoDBStore | RedisStore


def _redact(url: str) -> str:
    """Show what is safe to log: sqlite paths and plain table names, else only the scheme.

    A redis URL may carry a password even when malformed (``redis://user:secret/host`` parses the
    secret as a port), so anything that is not sqlite or dynamodb is cut after its scheme.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<no scheme>"
    if scheme.lower() == "dynamodb" and not re.fullmatch(r"[A-Za-z0-9_.-]*/?", rest):
        return "dynamodb://..."
    if scheme.lower() not in ("sqlite", "dynamodb"):
        return f"{scheme[:20]}://..."
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}" if "@" in rest else url


def _error(url: str, problem: str) -> StoreUrlError:
    return StoreUrlError(
        f"{SETTING} {problem} (got {_redact(url)!r}); accepted forms: {ACCEPTED_FORMS}"
    )


def parse_store_url(url: str) -> StoreSpec:
    """Parse and validate ``IDEMPOTENCY_STORE`` without touching any backend."""
    url = url.strip()
    if not url:
        raise _error(url, "is empty")
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        # SQLAlchemy convention: three slashes then the path, so a fourth slash means absolute.
        if url[: len("sqlite:///")].lower() != "sqlite:///":
            raise _error(url, "sqlite URL must start with sqlite:/// (no host)")
        path = url[len("sqlite:///") :]
        if not path or path.endswith("/") or "?" in path or "#" in path or path == ":memory:":
            raise _error(url, "sqlite URL needs a file path (no query, no :memory:)")
        return SQLiteStore(path=path)
    if scheme not in ("dynamodb", "redis", "rediss"):
        raise _error(url, "has an unknown or missing scheme")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # urllib's message may quote a password taken for a port: not chained
        raise _error(url, "has a malformed host or port") from None
    if parts.query or parts.fragment:
        raise _error(url, "must not have a query string or fragment")
    if scheme == "dynamodb":
        table = parts.netloc
        if "@" in table or port is not None or parts.path not in ("", "/"):
            raise _error(url, "dynamodb URL must be dynamodb://TABLE_NAME")
        if not _DYNAMODB_TABLE.match(table):
            raise _error(url, "names an invalid DynamoDB table (3-255 of A-Z a-z 0-9 _ . -)")
        return DynamoDBStore(table_name=table)
    if not parts.hostname:
        raise _error(url, "redis URL needs a host")
    db_text = parts.path.lstrip("/")
    if parts.path.count("/") > 1 or (db_text and not (db_text.isascii() and db_text.isdigit())):
        raise _error(url, "redis database must be a number, as in redis://host:6379/0")
    return RedisStore(
        host=parts.hostname,
        port=port or 6379,
        db=int(db_text or 0),
        ssl=scheme == "rediss",
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def build_persistence_layer(url: str) -> BasePersistenceLayer:
    """Return a new persistence layer for ``url``. No connection is opened here.

    Build one per ``IdempotencyConfig``: a layer keeps the first config it is used with.
    """
    spec = parse_store_url(url)
    if isinstance(spec, SQLiteStore):
        from handler.adapters.sqlite_store import SQLitePersistenceLayer

        return SQLitePersistenceLayer(spec.path)
    if isinstance(spec, DynamoDBStore):
        from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import (
            DynamoDBPersistenceLayer,
        )

        return DynamoDBPersistenceLayer(table_name=spec.table_name)
    try:
        from handler.adapters.redis_store import RedisPersistenceLayer
    except ImportError as exc:
        raise ImportError(
            f"{SETTING} redis:// and rediss:// need the redis package: "
            "pip install 'aws-lambda-powertools[redis]'"
        ) from exc
    return RedisPersistenceLayer(
        host=spec.host,
        port=spec.port,
        username=spec.username,
        password=spec.password,
        db_index=spec.db,
        ssl=spec.ssl,  # Powertools defaults to TLS; plain redis:// must turn it off
    )
