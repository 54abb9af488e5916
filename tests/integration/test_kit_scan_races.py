"""Packers racing on one kit never count a unit twice, never oversell, never pack twice, on
PostgreSQL and on SQLite.

The kit is built through the HTTP API on a committed scratch database: a lot-tracked flush
(lot A in bin A, lot B in bin B), a staging bench, a patient on a one-day template taking
five flushes, a planning run and POST /kits. Concurrent requests are threads with one Flask
client each, released together by a barrier.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from inventory import create_app
from inventory.db import Database
from inventory.kits.models import Kit, KitStatus
from inventory.ledger.audit import ledger_discrepancies
from inventory.ledger.models import Balance, Lot, Reservation, ReservationStatus
from inventory.users.models import Role
from tests.api.care_builders import kit_for_tomorrow
from tests.api.ledger_helpers import all_pages
from tests.api.planning_builders import today
from tests.builders import Api, Catalog, ok, token_for, unique

FLUSHES = 5  # the kit's flush line: 5 units of lot A
Body = dict[str, Any]
Reply = tuple[int, Body]


# --- helpers -----------------------------------------------------------------------------------


def _race(app: Flask, count: int, request: Callable[[Any, int], Reply]) -> list[Reply]:
    """Run ``request(client, index)`` in ``count`` threads released together; each thread
    has its own Flask client. An exception in a thread fails the test with its message."""
    barrier = threading.Barrier(count)
    results: list[Reply | None] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        client = app.test_client()
        try:
            barrier.wait(timeout=60)
            results[index] = request(client, index)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert all(result is not None for result in results), "a request thread did not finish"
    return [result for result in results if result is not None]


@dataclass
class Bench:
    """A packing bench with one open kit: its flush line holds 5 units of lot A."""

    app: Flask
    database: Database
    warehouse: Api
    token: str
    flush: Body
    shelf_a: Body
    shelf_b: Body
    staging: Body
    lot_a: str
    lot_b: str
    kit: Body

    def post(self, client: Any, path: str, body: Body | None = None) -> Reply:
        response = client.post(
            f"/api/v1{path}",
            json=body if body is not None else {},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        return response.status_code, response.get_json()

    def scan(self, client: Any, lot: str, quantity: int = 1) -> Reply:
        return self.post(
            client,
            f"/kits/{self.kit['id']}/scans",
            {"item_id": self.flush["id"], "lot": lot, "quantity": quantity},
        )

    def read(self) -> Body:
        return ok(self.warehouse.get(f"/kits/{self.kit['id']}"))

    def flush_lines(self) -> list[Body]:
        return [line for line in self.read()["lines"] if line["item_id"] == self.flush["id"]]


def open_bench(database: Database) -> Bench:
    app = create_app(database.settings, database=database, TESTING=True)
    token = token_for(database, Role.WAREHOUSE)
    warehouse = Api(app.test_client(), token)
    coordinator = Api(app.test_client(), token_for(database, Role.COORDINATOR))
    catalog = Catalog(warehouse, app)
    shelf_a = catalog.location(kind="storage", code=unique("A-01"))
    shelf_b = catalog.location(kind="storage", code=unique("B-01"))
    staging = catalog.location(kind="staging")
    flush = catalog.item(tracking="lot", category="flush")
    lot_a, lot_b = unique("LA"), unique("LB")
    # Lot A expires first, so FEFO plans the kit on it; lot B is the good lot a packer may
    # grab instead.
    catalog.receive(flush, shelf_a, 20, lot=lot_a, expiry=today() + timedelta(days=200))
    catalog.receive(flush, shelf_b, 20, lot=lot_b, expiry=today() + timedelta(days=300))
    _, kit = kit_for_tomorrow(coordinator, warehouse, [(flush["id"], FLUSHES)])
    bench = Bench(
        app, database, warehouse, token, flush, shelf_a, shelf_b, staging, lot_a, lot_b, kit
    )
    assert [
        (line["lot"], line["location_id"], line["quantity"], line["packed_quantity"])
        for line in bench.flush_lines()
    ] == [(lot_a, shelf_a["id"], FLUSHES, 0)]
    return bench


def assert_stock_matches_reservations(bench: Bench) -> None:
    """/stock's reserved equals the active reservations, per bin and lot, plus the units packed
    kits hold on their staging bench; no balance is oversold; the ledger agrees with its
    movements."""
    rows = all_pages(bench.warehouse, "/stock", item_id=bench.flush["id"], include_empty="true")
    shown = {(row["location_id"], row["lot"]): row["reserved"] for row in rows if row["reserved"]}
    for row in rows:
        assert 0 <= row["reserved"] <= row["on_hand"], row
        assert row["available"] == row["on_hand"] - row["reserved"] >= 0, row
    with bench.database.transaction() as session:
        held: Counter[tuple[int, str | None]] = Counter()
        for reservation, lot_number in session.execute(
            select(Reservation, Lot.lot_number)
            .outerjoin(Lot, Reservation.lot_id == Lot.id)
            .where(
                Reservation.item_id == bench.flush["id"],
                Reservation.status == ReservationStatus.ACTIVE,
            )
        ).all():
            assert 0 <= reservation.packed_quantity <= reservation.quantity, reservation.id
            held[(reservation.location_id, lot_number)] += reservation.quantity
        for reservation, lot_number, kit in session.execute(
            select(Reservation, Lot.lot_number, Kit)
            .outerjoin(Lot, Reservation.lot_id == Lot.id)
            .join(Kit, Reservation.kit_id == Kit.id)
            .where(
                Reservation.item_id == bench.flush["id"],
                Reservation.status == ReservationStatus.PICKED,
                Kit.status.in_(
                    [KitStatus.OPEN, KitStatus.PACKED, KitStatus.DISPATCHED, KitStatus.FAILED]
                ),
            )
        ).all():
            bench_id = kit.vehicle_location_id or kit.staging_location_id
            held[(bench_id, lot_number)] += reservation.quantity
        assert shown == dict(held)
        for balance in session.scalars(select(Balance)).all():
            assert 0 <= balance.reserved <= balance.on_hand, balance.id
        assert ledger_discrepancies(session) == []


@pytest.fixture
def bench(scratch: Database) -> Bench:
    return open_bench(scratch)


# --- scans -------------------------------------------------------------------------------------


def test_twelve_packers_scanning_one_unit_each_into_a_line_of_five_count_exactly_five(
    bench: Bench,
):
    replies = _race(bench.app, 12, lambda client, _: bench.scan(client, bench.lot_a))

    statuses = Counter(status for status, _ in replies)
    assert statuses == {200: FLUSHES, 409: 12 - FLUSHES}, replies
    refusals = [body for status, body in replies if status == 409]
    assert {body["reason"] for body in refusals} == {"too_many"}
    assert all(body["scan"]["counted"] == 1 for status, body in replies if status == 200)
    [line] = bench.flush_lines()
    assert (line["lot"], line["quantity"], line["packed_quantity"]) == (
        bench.lot_a,
        FLUSHES,
        FLUSHES,
    )
    assert bench.read()["complete"] is True
    assert_stock_matches_reservations(bench)


def test_scans_of_another_lot_racing_scans_of_the_reserved_lot_never_overpack_nor_oversell(
    bench: Bench,
):
    lots = [bench.lot_a, bench.lot_b] * 8  # 16 packers, half with each lot

    replies = _race(bench.app, len(lots), lambda client, i: bench.scan(client, lots[i]))

    statuses = Counter(status for status, _ in replies)
    assert statuses == {200: FLUSHES, 409: len(lots) - FLUSHES}, replies
    assert {body["reason"] for status, body in replies if status == 409} == {"too_many"}
    won = Counter(lots[i] for i, (status, _) in enumerate(replies) if status == 200)
    lines = bench.flush_lines()
    for line in lines:
        assert 0 <= line["packed_quantity"] <= line["quantity"], line
    # Every unit the kit needs is packed exactly once, on the lot its packer scanned.
    assert sum(line["quantity"] for line in lines) == FLUSHES
    packed = Counter[str]()
    for line in lines:
        packed[line["lot"]] += line["packed_quantity"]
    assert +packed == +won
    assert bench.read()["complete"] is True
    assert_stock_matches_reservations(bench)
    # Whatever the interleaving, the kit packs and the right units leave their bins.
    ok(bench.warehouse.post(f"/kits/{bench.kit['id']}/pack"))
    staged = {
        row["lot"]: row["on_hand"]
        for row in all_pages(
            bench.warehouse, "/stock", item_id=bench.flush["id"], location_id=bench.staging["id"]
        )
        if row["on_hand"]
    }
    assert staged == dict(+won)
    assert_stock_matches_reservations(bench)


# --- packing -----------------------------------------------------------------------------------


def test_two_packers_closing_one_complete_kit_at_once_pack_it_once(bench: Bench):
    client = bench.app.test_client()
    status, body = bench.scan(client, bench.lot_a, quantity=FLUSHES)
    assert status == 200, body
    assert body["kit"]["complete"] is True

    replies = _race(
        bench.app, 2, lambda client, _: bench.post(client, f"/kits/{bench.kit['id']}/pack")
    )

    assert sorted(status for status, _ in replies) == [200, 409], replies
    [refused] = [body for status, body in replies if status == 409]
    assert "packed" in refused["detail"], refused
    kit = bench.read()
    assert kit["status"] == "packed"
    movements = all_pages(bench.warehouse, "/movements", kit_id=bench.kit["id"])
    assert {m["type"] for m in movements} == {"pick"}
    assert len({m["document_id"] for m in movements}) == 1
    moved = Counter[tuple[Any, ...]]()
    for m in movements:
        moved[(m["lot"], m["from"]["location_id"], m["to"]["location_id"])] += m["quantity"]
    assert moved == {(bench.lot_a, bench.shelf_a["id"], bench.staging["id"]): FLUSHES}
    stock = {
        (row["location_id"], row["lot"]): row["on_hand"]
        for row in all_pages(
            bench.warehouse, "/stock", item_id=bench.flush["id"], include_empty="true"
        )
    }
    assert stock[(bench.staging["id"], bench.lot_a)] == FLUSHES
    assert stock[(bench.shelf_a["id"], bench.lot_a)] == 20 - FLUSHES
    assert_stock_matches_reservations(bench)
