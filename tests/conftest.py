"""Shared fixtures: every database-backed test runs on SQLite and on PostgreSQL.

* The schema is built once per backend by the Alembic migrations (never ``create_all``).
* Each test runs inside one outer transaction that is rolled back afterwards; the app's own
  commits become savepoint releases inside it.
* PostgreSQL tests skip with a clear message when no server answers, unless ``CI=true``, where
  they must run and an unreachable server fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

from inventory.config import Settings, normalize_database_url
from inventory.db import Database, make_engine
from inventory.schema_version import upgrade

DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
IN_CI = os.environ.get("CI", "").lower() == "true"


def pg_admin_url() -> str:
    return normalize_database_url(os.environ.get("INVENTORY_TEST_PG_URL", DEFAULT_PG_ADMIN_URL))


def postgres_available() -> str | None:
    """None when PostgreSQL answers; otherwise why not."""
    try:
        engine = create_engine(pg_admin_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


@dataclass
class Backend:
    name: str
    url: str
    settings: Settings
    engine: Engine

    def new_database(self) -> Database:
        return Database(self.settings, engine=make_engine(self.settings))


def create_scratch_database(name: str, tmp_dir: Path) -> tuple[str, callable]:  # type: ignore[valid-type]
    """A fresh, migrated database on the named backend, and a function that drops it."""
    if name == "sqlite":
        path = tmp_dir / f"inventory-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        return url, lambda: None
    reason = postgres_available()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but does not answer: {reason}")
        pytest.skip(
            f"PostgreSQL not reachable at {make_url(pg_admin_url()).render_as_string()} "
            f"({reason}); set INVENTORY_TEST_PG_URL to run these tests"
        )
    db_name = f"inventory_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{db_name}"'))
    url = make_url(pg_admin_url()).set(database=db_name).render_as_string(hide_password=False)
    upgrade(url)

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    url, drop = create_scratch_database(request.param, tmp_path_factory.mktemp("db"))
    settings = Settings(database_url=url, log_level="WARNING")
    engine = make_engine(settings)
    yield Backend(request.param, url, settings, engine)
    engine.dispose()
    drop()


@pytest.fixture
def connection(backend: Backend) -> Iterator[Connection]:
    """One outer transaction per test, rolled back afterwards."""
    with backend.engine.connect() as connection:
        outer = connection.begin()
        yield connection
        outer.rollback()


@pytest.fixture
def database(backend: Backend, connection: Connection) -> Database:
    database = Database(backend.settings, engine=backend.engine)
    database.bind_to(connection)
    return database
