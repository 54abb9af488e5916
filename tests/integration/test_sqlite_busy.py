"""When SQLite's write lock cannot be had in time, the answer is 503 with Retry-After."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import event, text

from inventory import create_app
from inventory.config import Settings
from inventory.db import Database
from tests.conftest import create_scratch_database
from tests.integration.stockyard import Stockyard


def test_a_write_that_cannot_get_the_sqlite_lock_answers_503_with_retry_after(tmp_path: Path):
    url, _ = create_scratch_database("sqlite", tmp_path)
    settings = Settings(database_url=url, sqlite_busy_timeout_ms=100, retry_after_seconds=2)
    database = Database(settings)
    yard = Stockyard(database)
    yard.receive(quantity=5)
    token = yard.token()
    app = create_app(settings, database=database, TESTING=True)
    body = {
        "reason": "lost",
        "lines": [
            {"item_id": yard.item, "lot": yard.lot, "location_id": yard.shelf, "quantity_delta": -1}
        ],
    }
    headers = {"Authorization": f"Bearer {token}"}

    blocker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        response = app.test_client().post("/api/v1/adjustments", json=body, headers=headers)
        assert response.status_code == 503, response.get_data(as_text=True)
        assert response.content_type == "application/problem+json"
        assert response.headers["Retry-After"] == "2"
        assert "Traceback" not in response.get_data(as_text=True)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    retried = app.test_client().post("/api/v1/adjustments", json=body, headers=headers)
    assert retried.status_code == 201
    database.dispose()


def test_sqlite_connections_use_wal_foreign_keys_and_immediate_write_transactions(tmp_path: Path):
    url, _ = create_scratch_database("sqlite", tmp_path)
    database = Database(Settings(database_url=url))
    statements: list[str] = []

    @event.listens_for(database.engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    with database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    with database.transaction() as session:
        session.execute(text("SELECT 1"))
    reader = database.session(read_only=True)
    reader.execute(text("SELECT 1"))
    reader.close()
    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins[-2:] == ["BEGIN IMMEDIATE", "BEGIN"]  # writers take the lock up front
    database.dispose()
