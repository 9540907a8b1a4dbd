"""Engines and migrations for the ledger.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` and takes its write
lock at ``BEGIN`` (``BEGIN IMMEDIATE``), so concurrent writers queue instead of failing half-way.
PostgreSQL is chosen with ``CHARTER_LEDGER_URL`` (or the Airflow connection ``charter_ledger``,
resolved by ``charter_airflow``).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from charter_guardrails.core.errors import LedgerNotMigrated, LedgerUnavailable
from charter_guardrails.core.settings import get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: Execution option of a connection whose transaction only reads: on SQLite it begins with a deferred
#: ``BEGIN`` (a WAL snapshot that lets writers go on) instead of ``BEGIN IMMEDIATE``.
READ_SNAPSHOT = "charter_read_snapshot"
_ENGINES: list[Engine] = []


def redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL must still not leak a secret
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _normalise(url: str) -> str:
    # psycopg (3) is installed by the postgres provider; plain postgresql:// would ask for psycopg2.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@functools.lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    url = _normalise(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below take over
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            # a transaction that only reads (a long audit verification) takes a snapshot, not the write lock
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_SNAPSHOT) else "BEGIN IMMEDIATE")

        _ENGINES.append(engine)
        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    _ENGINES.append(engine)
    return engine


def get_engine(url: str | None = None) -> Engine:
    return _engine_for(url or get_settings().ledger_url)


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", _normalise(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None  # noqa: S101 - the project ships its migrations: there is a head
    return head


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except OperationalError as exc:
        raise LedgerUnavailable(f"cannot reach the ledger at {redact_url(str(engine.url))}: {exc.orig}") from exc


def migrate(url: str | None = None) -> tuple[str | None, str]:
    """Upgrade the ledger to the latest migration; return (before, after)."""
    from alembic import command

    url = url or get_settings().ledger_url
    engine = get_engine(url)
    before = current_revision(engine)
    config = _alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, head_revision()


def ensure_migrated(engine: Engine) -> None:
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "has never been migrated" if current is None else f"is at revision {current}, the code expects {head}"
        raise LedgerNotMigrated(
            f"the ledger at {redact_url(str(engine.url))} {state}: "
            "run `charter ledger migrate` (or `make run`, which does it)"
        )


@functools.lru_cache(maxsize=8)
def _checked(url: str) -> bool:
    ensure_migrated(get_engine(url))
    return True


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    """A session factory on a migrated ledger; raises :class:`LedgerNotMigrated` otherwise."""
    url = url or get_settings().ledger_url
    _checked(url)
    return sessionmaker(get_engine(url), expire_on_commit=False)


def reset_caches() -> None:
    """Forget engines and migration checks (tests switch databases)."""
    for engine in _ENGINES:
        engine.dispose()
    _ENGINES.clear()
    _engine_for.cache_clear()
    _checked.cache_clear()
