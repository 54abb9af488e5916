"""The database itself refuses to edit or delete a stock movement."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from inventory.db import Database
from tests.integration.stockyard import Stockyard


@pytest.fixture
def yard(scratch: Database) -> Stockyard:
    yard = Stockyard(scratch)
    yard.receive(quantity=10)
    return yard


def _count(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM stock_movements")).scalar_one())


def test_updating_a_movement_is_refused_by_a_trigger(yard: Stockyard):
    with pytest.raises(DBAPIError, match="append-only"), yard.database.engine.begin() as connection:
        connection.execute(text("UPDATE stock_movements SET quantity = 99"))
    with yard.database.engine.connect() as connection:
        assert connection.execute(text("SELECT quantity FROM stock_movements")).scalar_one() == 10


def test_deleting_a_movement_is_refused_by_a_trigger(yard: Stockyard):
    with pytest.raises(DBAPIError, match="append-only"), yard.database.engine.begin() as connection:
        connection.execute(text("DELETE FROM stock_movements"))
    assert _count(yard.database) == 1


@pytest.mark.parametrize("scratch", ["postgresql"], indirect=True)
def test_truncating_the_ledger_is_refused_on_postgresql(yard: Stockyard):
    with pytest.raises(DBAPIError, match="append-only"), yard.database.engine.begin() as connection:
        connection.execute(text("TRUNCATE stock_movements CASCADE"))
    assert _count(yard.database) == 1
