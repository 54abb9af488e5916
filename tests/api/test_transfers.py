"""POST /transfers: moving units between locations of one site, at their FIFO cost."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from inventory.ledger.service import hold, hold_many
from inventory.users.models import Role
from tests.api.ledger_helpers import (
    all_pages,
    days_ago,
    ledger_snapshot,
    line_summary,
    set_reserved,
    stock_of,
)
from tests.builders import ok, problem


def move(
    item: dict[str, Any],
    source: dict[str, Any],
    target: dict[str, Any],
    quantity: int,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "item_id": item["id"],
        "quantity": quantity,
        "from_location_id": source["id"],
        "to_location_id": target["id"],
        **fields,
    }


@pytest.fixture
def plain_item(catalog):
    return catalog.item(tracking="none", category="ppe")


@pytest.fixture
def lot_item(catalog):
    return catalog.item(tracking="lot")


@pytest.fixture
def pump(catalog):
    return catalog.item(tracking="serial", category="pump")


@pytest.fixture
def shelf(catalog):
    return catalog.location(code="SHELF-A")


@pytest.fixture
def other_shelf(catalog):
    return catalog.location(code="SHELF-B")


@pytest.fixture
def refused(warehouse, database):
    """Post a transfer that must be refused with ``status`` and change nothing at all."""

    def post(body: Any, status: int) -> dict[str, Any]:
        before = ledger_snapshot(warehouse, database)
        result = problem(warehouse.post("/transfers", body), status)
        assert ledger_snapshot(warehouse, database) == before
        return result

    return post


def test_a_transfer_moves_units_from_one_location_to_another(
    warehouse, catalog, plain_item, shelf, other_shelf
):
    catalog.receive(plain_item, shelf, 10, unit_cost="1.2500")
    transfer = ok(
        warehouse.post(
            "/transfers",
            {"reference": "MOVE-1", "lines": [move(plain_item, shelf, other_shelf, 4)]},
        ),
        201,
    )

    assert transfer["type"] == "transfer"
    [movement] = transfer["movements"]
    assert movement["type"] == "transfer"
    assert movement["quantity"] == 4
    assert movement["from"] == {"type": "location", "location_id": shelf["id"], "code": "SHELF-A"}
    assert movement["to"] == {
        "type": "location",
        "location_id": other_shelf["id"],
        "code": "SHELF-B",
    }
    assert (movement["unit_cost"], movement["total_cost"]) == ("1.2500", "5.0000")
    assert movement["reference"] == "MOVE-1"
    assert stock_of(warehouse, plain_item["id"]) == {
        (shelf["id"], None): 6,
        (other_shelf["id"], None): 4,
    }


def test_moving_everything_leaves_an_empty_row_behind(
    warehouse, catalog, plain_item, shelf, other_shelf
):
    catalog.receive(plain_item, shelf, 3)
    ok(warehouse.post("/transfers", {"lines": [move(plain_item, shelf, other_shelf, 3)]}), 201)
    assert stock_of(warehouse, plain_item["id"]) == {
        (shelf["id"], None): 0,
        (other_shelf["id"], None): 3,
    }
    rows = ok(warehouse.get("/stock", item_id=plain_item["id"]))["items"]
    assert [(r["location_id"], r["on_hand"]) for r in rows] == [(other_shelf["id"], 3)]


def test_a_transfer_takes_the_oldest_cost_first_and_a_later_one_the_rest(
    warehouse, catalog, plain_item, shelf, other_shelf
):
    catalog.receive(plain_item, shelf, 10, unit_cost="1.0000", occurred_at=days_ago(2))
    catalog.receive(plain_item, shelf, 10, unit_cost="2.0000", occurred_at=days_ago(1))

    first = ok(
        warehouse.post("/transfers", {"lines": [move(plain_item, shelf, other_shelf, 15)]}), 201
    )
    assert line_summary(first["movements"]) == [
        (10, "1.0000", shelf["id"], other_shelf["id"]),
        (5, "2.0000", shelf["id"], other_shelf["id"]),
    ]
    assert first["total_cost"] == "20.0000"

    rest = ok(
        warehouse.post("/transfers", {"lines": [move(plain_item, shelf, other_shelf, 5)]}), 201
    )
    assert line_summary(rest["movements"]) == [(5, "2.0000", shelf["id"], other_shelf["id"])]
    assert rest["total_cost"] == "10.0000"
    assert stock_of(warehouse, plain_item["id"]) == {
        (shelf["id"], None): 0,
        (other_shelf["id"], None): 20,
    }


def test_units_keep_their_purchase_order_after_a_transfer(
    warehouse, catalog, plain_item, shelf, other_shelf
):
    catalog.receive(plain_item, shelf, 10, unit_cost="1.0000", occurred_at=days_ago(2))
    catalog.receive(plain_item, shelf, 10, unit_cost="2.0000", occurred_at=days_ago(1))
    # Move all 20 to the other shelf, then take 12 onward: the oldest 10 still go first.
    ok(warehouse.post("/transfers", {"lines": [move(plain_item, shelf, other_shelf, 20)]}), 201)
    third = catalog.location()
    onward = ok(
        warehouse.post("/transfers", {"lines": [move(plain_item, other_shelf, third, 12)]}), 201
    )
    assert [(m["quantity"], m["unit_cost"]) for m in onward["movements"]] == [
        (10, "1.0000"),
        (2, "2.0000"),
    ]


def test_a_lot_transfer_carries_that_lots_cost(warehouse, catalog, lot_item, shelf, other_shelf):
    catalog.receive(lot_item, shelf, 10, unit_cost="3.0000", lot="CHEAP")
    catalog.receive(lot_item, shelf, 10, unit_cost="5.5000", lot="DEAR")
    transfer = ok(
        warehouse.post(
            "/transfers", {"lines": [move(lot_item, shelf, other_shelf, 4, lot="DEAR")]}
        ),
        201,
    )
    [movement] = transfer["movements"]
    assert (movement["lot"], movement["quantity"], movement["unit_cost"]) == ("DEAR", 4, "5.5000")
    assert stock_of(warehouse, lot_item["id"]) == {
        (shelf["id"], "CHEAP"): 10,
        (shelf["id"], "DEAR"): 6,
        (other_shelf["id"], "DEAR"): 4,
    }


def test_moving_more_than_is_available_is_a_conflict_naming_the_available_quantity(
    warehouse, catalog, plain_item, shelf, other_shelf, refused
):
    catalog.receive(plain_item, shelf, 10)
    body = refused({"lines": [move(plain_item, shelf, other_shelf, 11)]}, 409)
    assert body["type"].endswith("/insufficient-stock")
    assert "Only 10" in body["detail"]
    assert body["available"] == 10
    assert body["requested"] == 11
    assert body["location_id"] == shelf["id"]


def test_moving_from_a_location_that_never_held_the_item_is_a_conflict(
    warehouse, catalog, plain_item, shelf, other_shelf, refused
):
    catalog.receive(plain_item, shelf, 10)
    body = refused({"lines": [move(plain_item, other_shelf, shelf, 1)]}, 409)
    assert body["available"] == 0


def test_two_lines_drawing_on_the_same_stock_cannot_exceed_it_together(
    warehouse, catalog, plain_item, shelf, other_shelf, refused
):
    catalog.receive(plain_item, shelf, 10)
    body = refused(
        {
            "lines": [
                move(plain_item, shelf, other_shelf, 6),
                move(plain_item, shelf, other_shelf, 6),
            ]
        },
        409,
    )
    assert body["available"] == 4


def test_a_transfer_whose_second_line_fails_moves_nothing(
    warehouse, catalog, plain_item, lot_item, shelf, other_shelf, refused
):
    catalog.receive(plain_item, shelf, 10)
    catalog.receive(lot_item, shelf, 2, lot="SHORT")
    refused(
        {
            "lines": [
                move(plain_item, shelf, other_shelf, 5),
                move(lot_item, shelf, other_shelf, 3, lot="SHORT"),
            ]
        },
        409,
    )
    assert stock_of(warehouse, plain_item["id"]) == {(shelf["id"], None): 10}


def test_a_serial_unit_moves_with_its_serial_and_cost(warehouse, catalog, pump, shelf, other_shelf):
    catalog.receive(pump, shelf, 2, unit_cost="900.0000", serials=["PMP-1", "PMP-2"])
    transfer = ok(
        warehouse.post(
            "/transfers", {"lines": [move(pump, shelf, other_shelf, 1, serial="PMP-2")]}
        ),
        201,
    )
    [movement] = transfer["movements"]
    assert (movement["serial"], movement["quantity"], movement["unit_cost"]) == (
        "PMP-2",
        1,
        "900.0000",
    )
    assert stock_of(warehouse, pump["id"]) == {(shelf["id"], None): 1, (other_shelf["id"], None): 1}
    history = all_pages(warehouse, "/movements", item_id=pump["id"], type="transfer")
    assert [(m["serial"], m["to"]["location_id"]) for m in history] == [
        ("PMP-2", other_shelf["id"])
    ]


def test_a_serial_unit_can_only_leave_the_location_it_is_at(
    warehouse, catalog, pump, shelf, other_shelf, refused
):
    catalog.receive(pump, shelf, 2, serials=["AT-1", "AT-2"])
    ok(
        warehouse.post("/transfers", {"lines": [move(pump, shelf, other_shelf, 1, serial="AT-2")]}),
        201,
    )
    body = refused({"lines": [move(pump, shelf, other_shelf, 1, serial="AT-2")]}, 409)
    assert "AT-2" in body["detail"]


def test_a_serial_transfer_of_two_units_is_refused(
    warehouse, catalog, pump, shelf, other_shelf, refused
):
    catalog.receive(pump, shelf, 2, serials=["TWO-1", "TWO-2"])
    body = refused({"lines": [move(pump, shelf, other_shelf, 2, serial="TWO-1")]}, 422)
    assert list(body["errors"]) == ["lines.0.quantity"]


def test_a_serial_item_moved_without_its_serial_is_refused(
    catalog, pump, shelf, other_shelf, refused
):
    catalog.receive(pump, shelf, 1)
    body = refused({"lines": [move(pump, shelf, other_shelf, 1)]}, 422)
    assert list(body["errors"]) == ["lines.0.serial"]


def test_an_unknown_serial_is_refused(catalog, pump, shelf, other_shelf, refused):
    catalog.receive(pump, shelf, 1)
    body = refused({"lines": [move(pump, shelf, other_shelf, 1, serial="GHOST")]}, 422)
    assert list(body["errors"]) == ["lines.0.serial"]


def test_an_unknown_lot_is_refused(catalog, lot_item, shelf, other_shelf, refused):
    catalog.receive(lot_item, shelf, 5, lot="REAL")
    body = refused({"lines": [move(lot_item, shelf, other_shelf, 1, lot="IMAGINARY")]}, 422)
    assert list(body["errors"]) == ["lines.0.lot"]


def test_a_lot_tracked_item_moved_without_its_lot_is_refused(
    catalog, lot_item, shelf, other_shelf, refused
):
    catalog.receive(lot_item, shelf, 5)
    body = refused({"lines": [move(lot_item, shelf, other_shelf, 1)]}, 422)
    assert list(body["errors"]) == ["lines.0.lot"]


def test_a_lot_that_is_not_at_the_source_is_a_conflict(
    catalog, lot_item, shelf, other_shelf, refused
):
    catalog.receive(lot_item, other_shelf, 5, lot="ELSEWHERE")
    body = refused({"lines": [move(lot_item, shelf, other_shelf, 1, lot="ELSEWHERE")]}, 409)
    assert body["available"] == 0


def test_a_transfer_to_the_same_location_is_refused(catalog, plain_item, shelf, refused):
    catalog.receive(plain_item, shelf, 5)
    body = refused({"lines": [move(plain_item, shelf, shelf, 1)]}, 422)
    assert list(body["errors"]) == ["lines.0.to_location_id"]


def test_a_transfer_between_sites_is_refused(catalog, plain_item, shelf, refused):
    catalog.receive(plain_item, shelf, 5)
    far_away = catalog.location(site="SITE2")
    body = refused({"lines": [move(plain_item, shelf, far_away, 1)]}, 409)
    assert "site" in body["detail"]


def test_a_transfer_whose_lines_start_at_different_sites_is_refused(
    catalog, plain_item, shelf, other_shelf, refused
):
    far_shelf = catalog.location(site="SITE2")
    far_bin = catalog.location(site="SITE2")
    catalog.receive(plain_item, shelf, 5)
    catalog.receive(plain_item, far_shelf, 5)
    body = refused(
        {
            "lines": [
                move(plain_item, shelf, other_shelf, 1),
                move(plain_item, far_shelf, far_bin, 1),
            ]
        },
        422,
    )
    assert "site" in body["detail"]


def test_an_unknown_location_is_refused_naming_the_field(catalog, plain_item, shelf, refused):
    catalog.receive(plain_item, shelf, 5)
    body = refused({"lines": [move(plain_item, shelf, {"id": 987_654}, 1)]}, 422)
    assert body["errors"] == {"lines.0.to_location_id": ["No location 987654."]}


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001, "1", 1.5])
def test_a_quantity_that_is_not_a_positive_whole_number_is_refused(
    catalog, plain_item, shelf, other_shelf, refused, quantity
):
    catalog.receive(plain_item, shelf, 5)
    body = refused({"lines": [move(plain_item, shelf, other_shelf, quantity)]}, 422)
    assert list(body["errors"]) == ["lines.0.quantity"]


def test_reserved_units_cannot_be_moved(
    warehouse, database, catalog, plain_item, shelf, other_shelf, refused
):
    catalog.receive(plain_item, shelf, 10)
    set_reserved(database, plain_item["id"], shelf["id"], 8)

    body = refused({"lines": [move(plain_item, shelf, other_shelf, 3)]}, 409)
    assert "reserved" in body["detail"]
    assert (body["available"], body["reserved"]) == (2, 8)

    ok(warehouse.post("/transfers", {"lines": [move(plain_item, shelf, other_shelf, 2)]}), 201)
    [row] = ok(warehouse.get("/stock", item_id=plain_item["id"], location_id=shelf["id"]))["items"]
    assert (row["on_hand"], row["reserved"], row["available"]) == (8, 8, 0)


def test_holding_nothing_changes_nothing(warehouse, database, catalog, plain_item, shelf):
    catalog.receive(plain_item, shelf, 10)
    session = database.session()
    try:
        hold(session, [])
        hold_many(session, [])
        session.commit()
    finally:
        session.close()

    [row] = ok(warehouse.get("/stock", item_id=plain_item["id"], location_id=shelf["id"]))["items"]
    assert (row["on_hand"], row["reserved"], row["available"]) == (10, 0, 10)


def test_a_transfer_can_be_replayed_with_its_idempotency_key(
    warehouse, catalog, plain_item, shelf, other_shelf
):
    catalog.receive(plain_item, shelf, 10)
    body = {"lines": [move(plain_item, shelf, other_shelf, 4)]}
    headers = {"Idempotency-Key": "transfer-1"}
    first = warehouse.post("/transfers", body, headers=headers)
    again = warehouse.post("/transfers", body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    assert stock_of(warehouse, plain_item["id"]) == {
        (shelf["id"], None): 6,
        (other_shelf["id"], None): 4,
    }


@pytest.mark.parametrize("role", [Role.DRIVER, Role.FINANCE, Role.COORDINATOR])
def test_only_warehouse_and_admin_may_transfer(
    as_role, catalog, plain_item, shelf, other_shelf, role
):
    catalog.receive(plain_item, shelf, 10)
    problem(
        as_role(role).post("/transfers", {"lines": [move(plain_item, shelf, other_shelf, 1)]}), 403
    )


def test_an_idempotency_key_used_on_a_receipt_cannot_be_reused_for_a_transfer(
    warehouse, database, catalog, plain_item, shelf, other_shelf
):
    headers = {"Idempotency-Key": "one-key-two-endpoints"}
    body = {"lines": [move(plain_item, shelf, other_shelf, 1)]}
    receipt_line = {
        "item_id": plain_item["id"],
        "quantity": 5,
        "unit_cost": "1.0000",
        "location_id": shelf["id"],
    }
    ok(warehouse.post("/receipts", {"lines": [receipt_line]}, headers=headers), 201)
    before = ledger_snapshot(warehouse, database)
    result = problem(warehouse.post("/transfers", body, headers=headers), 422)
    assert list(result["errors"]) == ["Idempotency-Key"]
    assert ledger_snapshot(warehouse, database) == before


def test_a_transfer_of_five_hundred_lots_moves_them_all(
    warehouse, catalog, lot_item, shelf, other_shelf
):
    """The most lines a document takes, each its own lot: a thousand places for the ledger to
    read (SQLite refuses a query nested a thousand deep, so it reads them a hundred at a time)."""
    expiry = (date.today() + timedelta(days=365)).isoformat()
    lots = [f"BIG-{n:03d}" for n in range(500)]
    line = {"item_id": lot_item["id"], "quantity": 2, "unit_cost": "1.0000"}
    receipt = {
        "reference": "PO-BIG",
        "lines": [
            {**line, "location_id": shelf["id"], "lot": lot, "expiry": expiry} for lot in lots
        ],
    }
    ok(warehouse.post("/receipts", receipt), 201)
    body = {"lines": [move(lot_item, shelf, other_shelf, 1, lot=lot) for lot in lots]}
    transfer = ok(warehouse.post("/transfers", body), 201)
    assert len(transfer["movements"]) == 500
    held = stock_of(warehouse, lot_item["id"])
    assert held == {(place["id"], lot): 1 for lot in lots for place in (shelf, other_shelf)}
