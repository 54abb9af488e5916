"""``QueryAhead``: a query sent to the database now and read later, on the session's own
connection. The per diem report sends each batch's shipments ahead while it computes the batch
before (``costing.ReportFacts``); these tests pin what that relies on, on both backends."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import (
    BigInteger,
    Connection,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.exc import DBAPIError

from inventory.care.models import Payer
from inventory.db import CompiledQuery, Database, Money, QueryAhead


def test_the_query_sees_the_transactions_own_rows_and_its_parameters_are_typed(
    database: Database,
) -> None:
    """Sent inside the session's transaction (here the test's uncommitted one), with money
    parameters stored as ten-thousandths, as the ORM would bind them, an IN list included."""
    session = database.session()
    payer = Payer(name="Ahead Health", modifier_multipliers={})
    session.add(payer)
    session.flush()
    amount = cast(literal(Decimal("1.2345"), Money()), BigInteger)
    listed = type_coerce(literal_column("12345"), Money()).in_([Decimal("1.2345"), Decimal(2)])
    ahead = QueryAhead(session, select(Payer.name, amount, listed).where(Payer.id == payer.id))
    rows = ahead.rows()
    assert [tuple(row) for row in rows] == [("Ahead Health", 12345, True)]
    session.close()


def test_a_query_closed_unread_leaves_the_session_usable(database: Database) -> None:
    session = database.session()
    ahead = QueryAhead(session, select(literal(1)))
    ahead.close()
    ahead.close()  # twice is harmless
    assert session.execute(select(literal(2))).scalar_one() == 2
    session.close()


def postgresql_only(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("pipeline mode is PostgreSQL's; elsewhere the query runs when it is read")


def test_postgresql_works_on_the_query_before_it_is_read(
    database: Database, connection: Connection
) -> None:
    """The point of it: the server is busy with the query while Python does something else.
    Another connection sees the session's backend running it before anything is read."""
    postgresql_only(database)
    session = database.session()
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    ahead = QueryAhead(session, select(func.pg_sleep(0.5), literal(7)))
    with database.engine.connect() as watcher:
        seen = None
        deadline = time.monotonic() + 5
        while seen is None and time.monotonic() < deadline:
            seen = watcher.execute(
                text(
                    "SELECT query FROM pg_stat_activity"
                    " WHERE pid = :pid AND state = 'active' AND query LIKE '%pg_sleep%'"
                ),
                {"pid": pid},
            ).scalar()
    assert seen is not None, "the query was not running on the server before being read"
    assert [tuple(row) for row in ahead.rows()] == [("", 7)]
    assert session.execute(select(literal(3))).scalar_one() == 3
    session.close()


def test_a_failing_query_raises_as_sqlalchemy_raises_it(database: Database) -> None:
    """So the app's error handling (a statement timeout is a 503) sees the same exception
    whichever way the query ran."""
    postgresql_only(database)
    session = database.session()
    ahead = QueryAhead(session, select(text("1 / (SELECT 0)")))
    with pytest.raises(DBAPIError) as raised:
        ahead.rows()
    assert raised.value.orig is not None
    assert getattr(raised.value.orig, "sqlstate", None) == "22012"  # division_by_zero
    session.rollback()
    session.close()


def test_one_compiled_query_is_sent_with_new_values_for_its_named_parameters(
    database: Database,
) -> None:
    """How the report sends every batch's shipments with one statement; a value for a name
    the query does not have is refused rather than ignored."""
    session = database.session()
    query = select(bindparam("low", 1) + 1, cast(literal(Decimal("0.5"), Money()), BigInteger))
    compiled = CompiledQuery.of(session, query)
    assert [tuple(row) for row in QueryAhead(session, compiled).rows()] == [(2, 5000)]
    assert [tuple(row) for row in QueryAhead(session, compiled, {"low": 41}).rows()] == [(42, 5000)]
    if compiled.statement is not None:  # PostgreSQL: the values are bound, not recompiled
        with pytest.raises(LookupError):
            QueryAhead(session, compiled, {"high": 1})
    session.close()
