"""Reservations never oversell: 50 concurrent requests for different infusion days compete for
the last 10 units, on PostgreSQL and on SQLite (threads; the process race is in tests/e2e)."""

from __future__ import annotations

from collections import Counter
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
