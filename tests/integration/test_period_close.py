"""Closing a month: the close and its snapshot never change, nothing is dated inside a closed
month afterwards (in the business time zone), and on PostgreSQL a posting racing a close
either commits before the close proceeds or waits for it and is refused.

Every test runs on a committed scratch database; stock is posted through the real services
with an explicit ``occurred_at``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from inventory.care.models import Counting, KitTemplate, Patient, Payer, PayerRate
from inventory.config import Settings
from inventory.db import Database, business_date, utcnow
from inventory.errors import Conflict, InvalidInput, PeriodClosed
from inventory.finance import rules
from inventory.finance import service as finance
from inventory.ledger.models import AdjustmentReason, ClosedPeriod, Movement, StockDocument
from inventory.stock import service as stock
from inventory.therapies import service as therapies
from tests.integration.stockyard import Stockyard

EXPIRY = date(2099, 12, 31)
LOT = "LOT-PERIOD"


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC)


# --- posting with an explicit occurred_at ------------------------------------------------------


def receive(session: Session, yard: Stockyard, occurred_at: datetime) -> StockDocument:
    return stock.receive(
        session,
        yard.caller,
        {
            "occurred_at": occurred_at,
            "lines": [
                {
                    "item_id": yard.item,
                    "quantity": 2,
                    "unit_cost": Decimal("1.2500"),
                    "location_id": yard.shelf,
                    "lot": LOT,
                    "expiry": EXPIRY,
                }
            ],
        },
    )


def adjust(session: Session, yard: Stockyard, occurred_at: datetime) -> StockDocument:
    return stock.adjust(
        session,
        yard.caller,
        {
            "occurred_at": occurred_at,
            "reason": AdjustmentReason.FOUND,
            "lines": [
                {
                    "item_id": yard.item,
                    "quantity_delta": 1,
                    "unit_cost": Decimal("1.2500"),
                    "location_id": yard.shelf,
                    "lot": LOT,
                    "expiry": EXPIRY,
                }
            ],
        },
    )


Post = Callable[[Session, Stockyard, datetime], StockDocument]
POSTS = pytest.mark.parametrize("post", [receive, adjust], ids=["receipt", "adjustment"])


def post_committed(database: Database, yard: Stockyard, occurred_at: datetime, how: Post) -> int:
    """Post in a transaction of its own; returns the document id."""
    with database.transaction() as session:
        return how(session, yard, occurred_at).id


def close(database: Database, yard: Stockyard, month: str) -> ClosedPeriod:
    with database.transaction() as session:
        return finance.close_period(session, yard.caller, month, "month end")


def count(database: Database, model: Any, *where: Any) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def rows(database: Database, table: str) -> list[tuple[Any, ...]]:
    with database.engine.connect() as connection:
        order = "month" if table == "closed_periods" else "id"
        return [
            tuple(r) for r in connection.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))
        ]


def january_therapy(database: Database) -> None:
    """A patient on a calendar-day therapy from 10 to 20 January 2025: eleven report rows."""
    n = uuid.uuid4().hex[:8]
    with database.transaction() as session:
        payer = Payer(name=f"payer {n}", modifier_multipliers={})
        template = KitTemplate(name=f"template {n}", hcpcs="S9500")
        session.add_all([payer, template])
        session.flush()
        session.add(
            PayerRate(
                payer_id=payer.id,
                hcpcs="S9500",
                rate=Decimal("100.0000"),
                counting=Counting.CALENDAR_DAY,
                effective_from=date(2024, 1, 1),
            )
        )
        patient = Patient(
            external_ref=f"MRN-{n}",
            name="Pat Example",
            address_line1="1 Main St",
            city="Austin",
            state="TX",
            postal_code="78701",
            payer_id=payer.id,
            site="S1",
        )
        session.add(patient)
        session.flush()
        therapies.create_therapy(
            session,
            {
                "patient_id": patient.id,
                "template_id": template.id,
                "hcpcs": "S9500",
                "start_date": date(2025, 1, 10),
                "end_date": date(2025, 1, 20),
                "schedule": {"every_days": 1},
            },
            today=date(2025, 1, 1),
        )


@pytest.fixture
def yard(scratch: Database) -> Stockyard:
    return Stockyard(scratch)


# --- 1. the close and its snapshot are frozen by triggers --------------------------------------


@pytest.fixture
def closed_january(scratch: Database, yard: Stockyard) -> Database:
    january_therapy(scratch)
    close(scratch, yard, "2025-01")
    assert len(rows(scratch, "closed_periods")) == 1
    assert len(rows(scratch, "closed_days")) == 11  # the snapshot is not empty
    return scratch


@pytest.mark.parametrize(
    ("table", "statement"),
    [
        ("closed_periods", "UPDATE closed_periods SET note = 'rewritten'"),
        ("closed_periods", "UPDATE closed_periods SET last_day = first_day"),
        ("closed_periods", "DELETE FROM closed_periods"),
        ("closed_days", "UPDATE closed_days SET per_diem_units = 99"),
        ("closed_days", "UPDATE closed_days SET expected_revenue = 0"),
        ("closed_days", "DELETE FROM closed_days"),
    ],
)
def test_a_closed_period_and_its_snapshot_never_change(
    closed_january: Database, table: str, statement: str
):
    periods, days = rows(closed_january, "closed_periods"), rows(closed_january, "closed_days")
    with (
        pytest.raises(DBAPIError, match="a closed period and its figures never change"),
        closed_january.engine.begin() as connection,
    ):
        connection.execute(text(statement))
    assert rows(closed_january, "closed_periods") == periods
    assert rows(closed_january, "closed_days") == days


def test_a_period_cannot_be_reopened_by_deleting_its_snapshot_first(closed_january: Database):
    days = rows(closed_january, "closed_days")
    with pytest.raises(DBAPIError), closed_january.engine.begin() as connection:
        connection.execute(text("DELETE FROM closed_days WHERE month = '2025-01'"))
        connection.execute(text("DELETE FROM closed_periods WHERE month = '2025-01'"))
    assert rows(closed_january, "closed_days") == days
    assert [r[0] for r in rows(closed_january, "closed_periods")] == ["2025-01"]


# --- 2. nothing is dated inside a closed month ------------------------------------------------


@POSTS
def test_a_movement_dated_in_a_closed_month_is_refused_and_writes_nothing(
    scratch: Database, yard: Stockyard, post: Post
):
    close(scratch, yard, "2025-01")
    movements, documents = count(scratch, Movement), count(scratch, StockDocument)
    for moment in (
        "2025-01-15T12:00:00+00:00",
        "2025-01-01T00:00:00+00:00",
        "2025-01-31T23:59:59+00:00",
    ):
        with pytest.raises(PeriodClosed) as refused:
            post_committed(scratch, yard, at(moment), post)
        assert refused.value.status == 409
        assert refused.value.extra == {"period": "2025-01"}
    assert count(scratch, Movement) == movements
    assert count(scratch, StockDocument) == documents
    assert count(scratch, Movement, Movement.occurred_at < at("2025-02-01T00:00:00+00:00")) == 0


@POSTS
def test_movements_either_side_of_a_closed_month_are_accepted(
    scratch: Database, yard: Stockyard, post: Post
):
    close(scratch, yard, "2025-01")
    before = post_committed(scratch, yard, at("2024-12-31T23:59:59+00:00"), post)
    after = post_committed(scratch, yard, at("2025-02-01T00:00:00+00:00"), post)
    with scratch.transaction() as session:
        for document_id in (before, after):
            moved = session.scalars(
                select(Movement).where(Movement.document_id == document_id)
            ).all()
            assert len(moved) == 1
    assert count(scratch, Movement) == 2


def test_closing_a_closed_month_again_is_a_conflict(scratch: Database, yard: Stockyard):
    first = close(scratch, yard, "2025-01")
    with pytest.raises(Conflict, match="already closed") as again:
        close(scratch, yard, "2025-01")
    assert not isinstance(again.value, PeriodClosed)
    with scratch.transaction() as session:
        periods = finance.list_periods(session)
    assert [(p.month, p.closed_at, p.note) for p in periods] == [
        ("2025-01", first.closed_at, "month end")
    ]


def test_the_current_and_future_months_cannot_be_closed(scratch: Database, yard: Stockyard):
    with scratch.transaction() as session:
        today = business_date(session, utcnow())
    current = rules.month_of(today)
    following = rules.month_of(rules.month_bounds(current)[1] + timedelta(days=1))
    for month in (current, following):
        with pytest.raises(Conflict, match="not over yet"):
            close(scratch, yard, month)
    assert rows(scratch, "closed_periods") == []


@pytest.mark.parametrize(
    "month",
    ["", "2025", "2025-1", "2025-13", "2025-00", "2025/01", "25-01-1", "Jan-2025", "2025-1a"],
)
def test_a_month_that_is_not_yyyy_mm_is_invalid_input(
    scratch: Database, yard: Stockyard, month: str
):
    with pytest.raises(InvalidInput) as refused:
        close(scratch, yard, month)
    assert refused.value.errors == {"month": ["must be a month written YYYY-MM"]}
    assert rows(scratch, "closed_periods") == []


@pytest.mark.parametrize(
    "month",
    ["\u0662\u0660\u0662\u0665-\u0660\u0661", "\uff12\uff10\uff12\uff15-\uff10\uff11"],
    ids=["arabic-indic-digits", "fullwidth-digits"],
)
def test_a_month_in_non_ascii_digits_does_not_close_january_a_second_time(
    scratch: Database, yard: Stockyard, month: str
):
    """str.isdigit() and int() accept any Unicode decimal digit, so this names January 2025."""
    january_therapy(scratch)
    close(scratch, yard, "2025-01")
    days = rows(scratch, "closed_days")
    with pytest.raises((InvalidInput, Conflict)):
        close(scratch, yard, month)
    assert [r[0] for r in rows(scratch, "closed_periods")] == ["2025-01"]
    assert rows(scratch, "closed_days") == days


# --- 3. months are counted in the business time zone -----------------------------------------


@pytest.fixture
def chicago(scratch: Database) -> Iterator[Database]:
    database = Database(
        Settings(
            database_url=scratch.settings.database_url,
            log_level="WARNING",
            timezone="America/Chicago",
        )
    )
    yield database
    database.dispose()


@POSTS
def test_a_closed_month_ends_at_midnight_in_the_business_time_zone(
    scratch: Database, chicago: Database, post: Post
):
    yard = Stockyard(chicago)
    period = close(chicago, yard, "2025-01")
    assert (period.first_day, period.last_day) == (date(2025, 1, 1), date(2025, 1, 31))
    still_january = at("2025-02-01T03:00:00+00:00")  # 21:00 on 31 January in Chicago
    february = at("2025-02-01T07:00:00+00:00")  # 01:00 on 1 February in Chicago
    still_december = at("2025-01-01T03:00:00+00:00")  # 21:00 on 31 December in Chicago
    with pytest.raises(PeriodClosed):
        post_committed(chicago, yard, still_january, post)
    assert count(chicago, Movement) == 0
    post_committed(chicago, yard, february, post)
    post_committed(chicago, yard, still_december, post)
    assert count(chicago, Movement) == 2
    # The same close read with UTC settings: 03:00 UTC on 1 February is February,
    # and 03:00 UTC on 1 January is January.
    post_committed(scratch, yard, still_january, post)
    with pytest.raises(PeriodClosed):
        post_committed(scratch, yard, still_december, post)
    assert count(scratch, Movement) == 3


# --- 4. PostgreSQL: a posting racing a close --------------------------------------------------

WAIT_FOR_BLOCKED = 3.0  # seconds; under the 5 s lock_timeout of the default settings


def blocked_on(database: Database, pattern: str, timeout: float = WAIT_FOR_BLOCKED) -> bool:
    """Whether another session of this database is seen waiting on a lock in a statement
    matching ``pattern`` (ILIKE) within ``timeout``. Each look is its own transaction:
    pg_stat_activity is a per-transaction snapshot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.engine.connect() as connection:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' "
                    "AND query ILIKE :pattern"
                ),
                {"pattern": pattern},
            ).scalar_one()
        if waiting:
            return True
        time.sleep(0.02)
    return False


class Timeline:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.moments: dict[str, float] = {}
        self.errors: list[BaseException] = []

    def mark(self, event: str) -> None:
        with self._lock:
            self.moments[event] = time.monotonic()

    def run(self, *targets: Callable[[], None]) -> None:
        def guarded(target: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                try:
                    target()
                except BaseException as error:
                    self.errors.append(error)

            return run

        threads = [threading.Thread(target=guarded(t)) for t in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
        assert not self.errors, self.errors


MARCH = (at("2025-03-01T00:00:00+00:00"), at("2025-04-01T00:00:00+00:00"))


def march_movements(database: Database) -> list[Movement]:
    with database.transaction() as session:
        return list(
            session.scalars(
                select(Movement).where(
                    Movement.occurred_at >= MARCH[0], Movement.occurred_at < MARCH[1]
                )
            )
        )


@pytest.mark.parametrize("scratch", ["postgresql"], indirect=True)
@POSTS
def test_a_close_waits_for_a_posting_that_found_the_month_open(
    scratch: Database, yard: Stockyard, post: Post
):
    timeline = Timeline()
    posted = threading.Event()
    found: dict[str, Any] = {}

    def poster() -> None:
        session = scratch.session()
        try:
            found["document"] = post(session, yard, at("2025-03-15T12:00:00+00:00")).id
            session.flush()
            timeline.mark("P posted")
            posted.set()
            # Hold the transaction open until the close is seen queued behind it (and a bit).
            found["close blocked"] = blocked_on(scratch, "LOCK TABLE closed_periods%")
            time.sleep(0.3)
            timeline.mark("P commits")
            session.commit()
        finally:
            posted.set()
            session.close()

    def closer() -> None:
        assert posted.wait(timeout=30)
        session = scratch.session()
        try:
            timeline.mark("C starts")
            found["period"] = finance.close_period(session, yard.caller, "2025-03", None)
            timeline.mark("C closed")
            session.commit()
        finally:
            session.close()

    timeline.run(poster, closer)

    moments = timeline.moments
    assert found["close blocked"], "the close never waited on the posting's lock"
    assert moments["C closed"] > moments["P commits"], moments
    assert moments["C closed"] - moments["C starts"] >= 0.25, moments
    period: ClosedPeriod = found["period"]
    march = march_movements(scratch)
    assert [m.document_id for m in march] == [found["document"]]
    assert all(m.recorded_at < period.closed_at for m in march)


@pytest.mark.parametrize("scratch", ["postgresql"], indirect=True)
@POSTS
def test_a_posting_during_a_close_waits_for_it_and_is_refused(
    scratch: Database, yard: Stockyard, post: Post
):
    timeline = Timeline()
    closing = threading.Event()
    found: dict[str, Any] = {}

    def closer() -> None:
        session = scratch.session()
        try:
            found["period"] = finance.close_period(session, yard.caller, "2025-03", None)
            session.flush()
            timeline.mark("C closed")
            closing.set()
            # Hold the close open until the posting is seen queued behind it (and a bit).
            found["posting blocked"] = blocked_on(scratch, "%FROM closed_periods%FOR SHARE%")
            time.sleep(0.3)
            timeline.mark("C commits")
            session.commit()
        finally:
            closing.set()
            session.close()

    def poster() -> None:
        assert closing.wait(timeout=30)
        session = scratch.session()
        try:
            timeline.mark("P starts")
            post(session, yard, at("2025-03-20T12:00:00+00:00"))
            session.commit()
            found["outcome"] = "posted"
        except PeriodClosed as refused:
            session.rollback()
            found["outcome"] = refused
        finally:
            timeline.mark("P ends")
            session.close()

    timeline.run(closer, poster)

    moments = timeline.moments
    refused = found["outcome"]
    assert isinstance(refused, PeriodClosed), "a March movement was posted during the close"
    assert refused.extra == {"period": "2025-03"}
    assert found["posting blocked"], "the posting never waited on the close's lock"
    assert moments["P ends"] > moments["C commits"], moments
    period: ClosedPeriod = found["period"]
    march = march_movements(scratch)
    assert [m for m in march if m.recorded_at >= period.closed_at] == []
    assert march == []
