"""Engine, per-request sessions, column types and the SQLite/PostgreSQL connection rules."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, TypeVarTuple, overload
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Select,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import TypedReturnsRows
from sqlalchemy.types import TypeDecorator

from inventory.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MONEY_SCALE = Decimal("0.0001")
_MONEY_FACTOR = 10_000


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_Columns = TypeVarTuple("_Columns")
_Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


@overload
def execute_plain(
    session: Session, statement: TypedReturnsRows[*_Columns], params: _Params = None
) -> Result[*_Columns]: ...
@overload
def execute_plain(
    session: Session, statement: Executable, params: _Params = None
) -> Result[*tuple[Any, ...]]: ...
def execute_plain(
    session: Session, statement: Executable, params: _Params = None
) -> Result[*tuple[Any, ...]]:
    """Run a statement that returns plain columns, or writes rows no loaded object stands for
    (a bulk UPDATE, an INSERT of rows), on the session's connection: what ``session.execute``
    does for it, pending changes flushed first, without the ORM's execution work around each
    statement (about a third of a small statement's client CPU, measured). ``params`` may be a
    list of parameter sets (executemany)."""
    session.flush()
    return session.connection().execute(statement, params)


def utcnow() -> datetime:
    return datetime.now(UTC)


def business_zone(session: Session) -> ZoneInfo:
    """The pharmacy's time zone (``INVENTORY_TIMEZONE``): days and months are counted in it."""
    zone = session.info.get("timezone")
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo("UTC")


def business_date(session: Session, moment: datetime) -> date:
    return moment.astimezone(business_zone(session)).date()


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC and always come back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def to_money(value: Decimal | int | str) -> Decimal:
    """Quantize to the four decimal places money is kept at."""
    return Decimal(value).quantize(MONEY_SCALE, rounding=ROUND_HALF_EVEN)


class Money(TypeDecorator[Decimal]):
    """Exact money: stored as a whole number of ten-thousandths, so SQL sums stay exact."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError("money must be a Decimal")
        return int(to_money(value) * _MONEY_FACTOR)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(value) / _MONEY_FACTOR).quantize(MONEY_SCALE)


def money_from_units(value: int | None) -> Decimal:
    """Turn a raw SQL sum of :class:`Money` columns back into a Decimal."""
    return (Decimal(value or 0) / _MONEY_FACTOR).quantize(MONEY_SCALE)


READ_ONLY = "inventory_read_only"


def _configure_sqlite(engine: Engine, settings: Settings) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, record: ConnectionPoolEntry) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        # Writers take the write lock up front, so two writers queue instead of one failing
        # at commit; read-only requests stay deferred and never block writers under WAL.
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(settings: Settings) -> Engine:
    url = settings.database_url
    if settings.is_sqlite:
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            hide_parameters=True,
            connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000},
        )
        _configure_sqlite(engine, settings)
        return engine
    return create_engine(
        url,
        hide_parameters=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        connect_args={"options": postgresql_options(settings)},
    )


def postgresql_options(settings: Settings) -> str:
    """The session settings every PostgreSQL connection starts with (libpq ``options``)."""
    return (
        f"-c lock_timeout={settings.pg_lock_timeout_ms}"
        f" -c statement_timeout={settings.pg_statement_timeout_ms}"
        " -c timezone=UTC"
        # The planner's cost estimates for a year's report trigger JIT compilation, which
        # takes seconds: longer than running the queries (measured by scripts/bench report).
        " -c jit=off"
    )


class Database:
    """One engine per process; sessions are opened per request and per CLI command."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings)
        self.bind_to(None)

    def bind_to(self, connection: Connection | None) -> None:
        """Route sessions through one outer connection (tests roll it back afterwards)."""
        info = {"timezone": ZoneInfo(self.settings.timezone)}
        if connection is None:
            self._writer = sessionmaker(bind=self.engine, expire_on_commit=False, info=info)
            self._reader = sessionmaker(
                bind=self.engine.execution_options(**{READ_ONLY: True}),
                expire_on_commit=False,
                info=info,
            )
        else:
            self._writer = self._reader = sessionmaker(
                bind=connection,
                expire_on_commit=False,
                join_transaction_mode="create_savepoint",
                info=info,
            )

    def session(self, *, read_only: bool = False) -> Session:
        return (self._reader if read_only else self._writer)()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work for the CLI: commit on success, roll back on any error."""
        session = self.session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


@dataclass(frozen=True)
class CompiledQuery:
    """A SELECT compiled once for the session's database, to be sent ahead many times with new
    values for its named parameters (:class:`QueryAhead`). ``statement`` and ``params`` (each
    through its type's bind processor) are PostgreSQL's; elsewhere the query runs as it is."""

    query: Select[Any]
    statement: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    processors: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, session: Session, query: Select[Any]) -> CompiledQuery:
        connection = session.connection()
        if connection.dialect.name != "postgresql":
            return cls(query)
        compiled = query.compile(
            dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
        )
        processors = _bind_processors(compiled, connection.dialect)
        params = {
            key: _processed(processors.get(key), value) for key, value in compiled.params.items()
        }
        return cls(query, compiled.string, params, processors)

    def bound(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters with ``values`` for the named ones."""
        unknown = values.keys() - self.params.keys()
        if unknown:
            raise LookupError(f"no bound parameter named {', '.join(sorted(unknown))}")
        return self.params | {
            key: _processed(self.processors.get(key), value) for key, value in values.items()
        }


class QueryAhead:
    """A SELECT sent to PostgreSQL now and read later, on the session's own connection (so in
    its transaction, seeing what it sees): psycopg's pipeline mode lets the server compute it
    while Python works on what was read before. Until :meth:`rows` (or :meth:`close`) nothing
    else may use the connection. On other databases the query simply runs in :meth:`rows`.

    The statement is compiled as the session would compile it (once, given a
    :class:`CompiledQuery`), and its parameters go through their types' bind processors, as
    SQLAlchemy's own execution does; the rows come back as the driver gives them (no result
    processors: plain columns only)."""

    def __init__(
        self,
        session: Session,
        query: Select[Any] | CompiledQuery,
        values: Mapping[str, Any] | None = None,
    ):
        self.session = session
        self.compiled = (
            query if isinstance(query, CompiledQuery) else CompiledQuery.of(session, query)
        )
        self.values = dict(values or {})
        self._pipeline: ExitStack | None = None
        if self.compiled.statement is None:
            return
        self._statement = self.compiled.statement
        self._params = self.compiled.bound(self.values)
        driver = session.connection().connection.driver_connection
        pipeline = ExitStack()
        try:
            pipeline.enter_context(driver.pipeline())  # type: ignore[union-attr]
            self._cursor = driver.cursor()  # type: ignore[union-attr]
            # Not prepared server-side (psycopg would after 5 runs): each batch's bounds get
            # a plan of their own, not a generic one.
            self._cursor.execute(self._statement, self._params, prepare=False)
        except psycopg.Error as error:
            pipeline.close()
            raise self._wrapped(error) from error
        self._pipeline = pipeline

    def rows(self) -> Sequence[Any]:
        """The query's rows, once: waits for the server if it is still computing them."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is None:
            return self.session.connection().execute(self.compiled.query, self.values).all()
        try:
            with pipeline:
                rows: list[Any] = self._cursor.fetchall()
        except psycopg.Error as error:
            raise self._wrapped(error) from error
        return rows

    def close(self) -> None:
        """Reads and drops the rows if nobody did (a report abandoned halfway), so the
        connection leaves pipeline mode; a failure then is the transaction's to report."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            with contextlib.suppress(psycopg.Error), pipeline:
                self._cursor.fetchall()

    def _wrapped(self, error: psycopg.Error) -> Exception:
        """The driver's error as SQLAlchemy raises it, so it is handled like any other."""
        return DBAPIError.instance(
            self._statement, self._params, error, psycopg.Error, hide_parameters=True
        )


def _bind_processors(compiled: SQLCompiler, dialect: Dialect) -> dict[str, Any]:
    """Each parameter's bind processor, where its type has one (an IN list's values, rendered
    as ``name_1``, ``name_2``..., take their list's)."""
    processors = {}
    for key in compiled.params:
        bind = compiled.binds.get(key)
        if bind is None:
            bind = compiled.binds.get(key.rsplit("_", 1)[0])
        if bind is None:
            raise LookupError(f"no bound parameter for {key}")
        process = bind.type.bind_processor(dialect)
        if process is not None:
            processors[key] = process
    return processors


def _processed(process: Any, value: Any) -> Any:
    return process(value) if process is not None and value is not None else value
