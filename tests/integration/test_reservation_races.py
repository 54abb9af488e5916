"""Reservations never oversell: 50 concurrent requests for different infusion days compete for
the last 10 units, on PostgreSQL and on SQLite (threads; the process race is in tests/e2e)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from inventory import create_app
from inventory.db import Database
from inventory.ledger.audit import ledger_discrepancies
from inventory.ledger.models import Balance, Reservation, ReservationStatus
from inventory.therapies.models import InfusionDay, InfusionDayStatus
from inventory.users.models import Role
from tests.integration.stockyard import Stockyard
from tests.integration.test_races import _fire


@pytest.fixture
def yard(scratch: Database) -> Stockyard:
    return Stockyard(scratch)


@pytest.fixture
def app(scratch: Database) -> Flask:
    return create_app(scratch.settings, database=scratch, TESTING=True)


def test_fifty_days_racing_for_the_last_ten_units_reserve_exactly_ten(yard: Stockyard, app: Flask):
    yard.receive(quantity=10)
    day_ids = yard.daily_therapy(days=50)
    token = yard.token(Role.COORDINATOR)

    def reserve(client: Any, index: int) -> int:
        response = client.post(
            f"/api/v1/infusion-days/{day_ids[index]}/reserve",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return int(response.get_json()["days_fully_reserved"])

    results = _fire(app, 50, reserve)
    assert sum(results) == 10
    with yard.database.transaction() as session:
        statuses = Counter(
            session.scalars(select(InfusionDay.status).where(InfusionDay.id.in_(day_ids))).all()
        )
        assert statuses == {InfusionDayStatus.RESERVED: 10, InfusionDayStatus.SHORT: 40}
        active = session.scalars(
            select(Reservation.quantity).where(Reservation.status == ReservationStatus.ACTIVE)
        ).all()
        assert sum(active) == 10
        balance = session.scalars(select(Balance).where(Balance.location_id == yard.shelf)).one()
        assert (balance.on_hand, balance.reserved) == (10, 10)
        assert ledger_discrepancies(session) == []


def test_two_planning_runs_at_once_reserve_each_day_once(yard: Stockyard, app: Flask):
    yard.receive(quantity=100)
    day_ids = yard.daily_therapy(days=14, per_day=2)
    token = yard.token(Role.COORDINATOR)

    def plan(client: Any, index: int) -> int:
        response = client.post(
            "/api/v1/planning/run",
            json={"horizon_days": 14},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return int(response.get_json()["reserved_lines"])

    _fire(app, 4, plan)
    with yard.database.transaction() as session:
        per_day = Counter()
        for reservation in session.scalars(
            select(Reservation).where(Reservation.status == ReservationStatus.ACTIVE)
        ).all():
            per_day[reservation.infusion_day_id] += reservation.quantity
        assert per_day == dict.fromkeys(day_ids, 2)
        assert ledger_discrepancies(session) == []


@pytest.mark.parametrize("scratch", ["postgresql"], indirect=True)
def test_stock_taken_between_the_draft_and_the_locks_is_drafted_again(
    yard: Stockyard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reservation drafts its FEFO choice before it takes the item locks. If a transfer takes
    the units it chose in between, the ledger refuses the draft and the day is drafted again
    under the locks: short, not a 409 and never an oversell. (PostgreSQL only: on SQLite the
    request holds the database's write lock from its first statement.)"""
    from inventory.planning import service as planning
    from inventory.stock import service as stock

    yard.receive(quantity=10)
    [day_id] = yard.daily_therapy(days=1)
    taken = []
    real_lock_items = planning.lock_items

    def a_transfer_gets_there_first(session: Any, item_ids: Any) -> None:
        if not taken:  # the draft is made; another transaction moves every unit away
            with yard.database.transaction() as other:
                line = {"item_id": yard.item, "lot": yard.lot, "quantity": 10}
                line |= {"from_location_id": yard.shelf, "to_location_id": yard.bench}
                taken.append(stock.transfer(other, yard.caller, {"lines": [line]}).id)
        real_lock_items(session, item_ids)

    monkeypatch.setattr(planning, "lock_items", a_transfer_gets_there_first)
    with yard.database.transaction() as session:
        day = session.get(InfusionDay, day_id)
        assert day is not None
        result = planning.reserve_day(session, day)
    assert taken
    assert (result.days_fully_reserved, result.days_short, result.reserved_lines) == (0, 1, 0)
    with yard.database.transaction() as session:
        assert session.get(InfusionDay, day_id).status is InfusionDayStatus.SHORT  # type: ignore[union-attr]
        assert session.scalars(select(Reservation)).all() == []
        assert ledger_discrepancies(session) == []


@pytest.mark.parametrize("scratch", ["postgresql"], indirect=True)
def test_a_day_cancelled_after_it_was_read_is_not_reserved(
    yard: Stockyard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first draft starts from the day as the caller read it. If the day is cancelled
    before the item locks are taken, the check under the locks sees it, and the day is drafted
    again from the database: nothing is reserved for a cancelled day. (PostgreSQL only, as
    above.)"""
    from inventory.planning import service as planning
    from inventory.therapies import service as therapies

    yard.receive(quantity=10)
    [day_id] = yard.daily_therapy(days=1)
    cancelled: list[int] = []
    real_lock_items = planning.lock_items

    def a_coordinator_cancels_it_first(session: Any, item_ids: Any) -> None:
        if not cancelled:  # the draft is made from the day as read; another cancels it
            cancelled.append(day_id)
            with yard.database.transaction() as other:
                day = other.get(InfusionDay, day_id)
                assert day is not None
                therapies.change_day(other, day, {"status": InfusionDayStatus.CANCELLED})
        real_lock_items(session, item_ids)

    monkeypatch.setattr(planning, "lock_items", a_coordinator_cancels_it_first)
    with yard.database.transaction() as session:
        day = session.get(InfusionDay, day_id)
        assert day is not None and day.status is InfusionDayStatus.SCHEDULED
        result = planning.plan_days(session, [day], date.today())
    assert cancelled
    assert (result.days_considered, result.reserved_lines) == (0, 0)
    with yard.database.transaction() as session:
        assert session.get(InfusionDay, day_id).status is InfusionDayStatus.CANCELLED  # type: ignore[union-attr]
        assert session.scalars(select(Reservation)).all() == []
        assert ledger_discrepancies(session) == []
