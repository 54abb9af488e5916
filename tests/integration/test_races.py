"""Concurrent writers never oversell and never double-apply, on PostgreSQL and on SQLite.

Each test fires real concurrent requests (threads, one Flask client each) at an app on a
committed scratch database, released together by a barrier.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from inventory import create_app
from inventory.db import Database
from inventory.ledger.audit import ledger_discrepancies
from inventory.ledger.models import Balance, Movement
from tests.integration.stockyard import Stockyard


def _fire(app: Flask, count: int, request: Callable[[Any, int], Any]) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        client = app.test_client()
        barrier.wait()
        results[index] = request(client, index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(result is not None for result in results)
    return results


@pytest.fixture
def yard(scratch: Database) -> Stockyard:
    return Stockyard(scratch)


@pytest.fixture
def app(scratch: Database) -> Flask:
    return create_app(scratch.settings, database=scratch, TESTING=True)


def _on_hand(database: Database, location_id: int) -> int:
    with database.transaction() as session:
        return sum(
            session.scalars(select(Balance.on_hand).where(Balance.location_id == location_id)).all()
        )


@pytest.mark.parametrize("units_each", [1, 3])
def test_twenty_clients_racing_for_the_last_ten_units_never_take_more_than_ten(
    yard: Stockyard, app: Flask, units_each: int
):
    yard.receive(quantity=10)
    token = yard.token()
    body = {
        "lines": [
            {
                "item_id": yard.item,
                "lot": yard.lot,
                "quantity": units_each,
                "from_location_id": yard.shelf,
                "to_location_id": yard.bench,
            }
        ]
    }

    def take(client: Any, index: int) -> int:
        response = client.post(
            "/api/v1/transfers", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code in (201, 409), response.get_data(as_text=True)
        return int(response.status_code)

    statuses = Counter(_fire(app, 20, take))
    winners = 10 // units_each
    assert statuses == {201: winners, 409: 20 - winners}
    assert _on_hand(yard.database, yard.shelf) == 10 - winners * units_each
    assert _on_hand(yard.database, yard.bench) == winners * units_each
    with yard.database.transaction() as session:
        assert ledger_discrepancies(session) == []
        assert all(b.on_hand >= 0 for b in session.scalars(select(Balance)).all())


def test_ten_concurrent_copies_of_one_request_with_one_key_have_one_effect(
    yard: Stockyard, app: Flask
):
    yard.receive(quantity=50)
    token = yard.token()
    body = {
        "reason": "damaged",
        "lines": [
            {"item_id": yard.item, "lot": yard.lot, "location_id": yard.shelf, "quantity_delta": -4}
        ],
    }

    def send(client: Any, index: int) -> tuple[int, str]:
        response = client.post(
            "/api/v1/adjustments",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "one-damaged-box"},
        )
        return response.status_code, response.get_data(as_text=True)

    results = _fire(app, 10, send)
    assert {status for status, _ in results} == {201}
    assert len({json.loads(text)["id"] for _, text in results}) == 1
    assert _on_hand(yard.database, yard.shelf) == 46
    with yard.database.transaction() as session:
        adjustments = session.scalars(select(Movement).where(Movement.type == "adjustment")).all()
        assert [m.quantity for m in adjustments] == [4]
        assert ledger_discrepancies(session) == []
