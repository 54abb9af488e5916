"""POST /adjustments: counts, damage, losses and finds; never below zero."""

from __future__ import annotations

from typing import Any

import pytest

from inventory.users.models import Role
from tests.api.ledger_helpers import (
    all_pages,
    days_ago,
    future_expiry,
    ledger_snapshot,
    line_summary,
    set_reserved,
    stock_of,
)
from tests.builders import ok, problem


def adjustment(reason: str, *lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"reason": reason, "lines": list(lines), **fields}


def delta(
    item: dict[str, Any], location: dict[str, Any], quantity_delta: int, **fields: Any
) -> dict[str, Any]:
    return {
        "item_id": item["id"],
        "location_id": location["id"],
        "quantity_delta": quantity_delta,
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
    return catalog.location()


@pytest.fixture
def adjust(warehouse):
    def post(body: dict[str, Any]) -> dict[str, Any]:
        return ok(warehouse.post("/adjustments", body), 201)

    return post


@pytest.fixture
def refused(warehouse, database):
    """Post an adjustment that must be refused with ``status`` and change nothing at all."""

    def post(body: Any, status: int) -> dict[str, Any]:
        before = ledger_snapshot(warehouse, database)
        result = problem(warehouse.post("/adjustments", body), status)
        assert ledger_snapshot(warehouse, database) == before
        return result

    return post


# --- units leaving stock ------------------------------------------------------------------------


def test_a_count_down_removes_units_to_the_adjustment_account(
    warehouse, catalog, adjust, plain_item, shelf
):
    catalog.receive(plain_item, shelf, 10, unit_cost="1.5000")
    document = adjust(adjustment("count", delta(plain_item, shelf, -3), note="cycle count"))

    assert (document["type"], document["reason"], document["note"]) == (
        "adjustment",
        "count",
        "cycle count",
    )
    [movement] = document["movements"]
    assert movement["type"] == "adjustment"
    assert movement["reason"] == "count"
    assert line_summary([movement]) == [(3, "1.5000", shelf["id"], "adjustment")]
    assert movement["total_cost"] == "4.5000"
    assert stock_of(warehouse, plain_item["id"]) == {(shelf["id"], None): 7}


def test_damaged_units_go_to_disposal(warehouse, catalog, adjust, lot_item, shelf):
    catalog.receive(lot_item, shelf, 10, unit_cost="2.0000", lot="DMG")
    document = adjust(adjustment("damaged", delta(lot_item, shelf, -2, lot="DMG")))
    [movement] = document["movements"]
    assert movement["to"] == {"type": "disposal", "location_id": None, "code": None}
    assert (movement["lot"], movement["quantity"], movement["unit_cost"]) == ("DMG", 2, "2.0000")
    assert stock_of(warehouse, lot_item["id"]) == {(shelf["id"], "DMG"): 8}


@pytest.mark.parametrize("reason", ["expired", "recalled"])
def test_expired_and_recalled_units_go_to_disposal(catalog, adjust, plain_item, shelf, reason):
    catalog.receive(plain_item, shelf, 5)
    document = adjust(adjustment(reason, delta(plain_item, shelf, -5)))
    assert [m["to"]["type"] for m in document["movements"]] == ["disposal"]


def test_lost_units_go_to_the_adjustment_account(warehouse, catalog, adjust, plain_item, shelf):
    catalog.receive(plain_item, shelf, 10)
    document = adjust(adjustment("lost", delta(plain_item, shelf, -4)))
    [movement] = document["movements"]
    assert movement["to"] == {"type": "adjustment", "location_id": None, "code": None}
    assert movement["reason"] == "lost"
    assert stock_of(warehouse, plain_item["id"]) == {(shelf["id"], None): 6}


def test_removed_units_leave_at_their_fifo_cost(catalog, adjust, plain_item, shelf):
    catalog.receive(plain_item, shelf, 3, unit_cost="1.0000", occurred_at=days_ago(2))
    catalog.receive(plain_item, shelf, 3, unit_cost="4.0000", occurred_at=days_ago(1))
    document = adjust(adjustment("lost", delta(plain_item, shelf, -5)))
    assert [(m["quantity"], m["unit_cost"]) for m in document["movements"]] == [
        (3, "1.0000"),
        (2, "4.0000"),
    ]
    assert document["total_cost"] == "11.0000"


def test_an_adjustment_below_zero_is_a_conflict_naming_what_is_available(
    catalog, plain_item, shelf, refused
):
    catalog.receive(plain_item, shelf, 4)
    body = refused(adjustment("count", delta(plain_item, shelf, -5)), 409)
    assert "Only 4" in body["detail"]
    assert (body["available"], body["requested"]) == (4, 5)


def test_removing_a_lot_that_is_not_at_the_location_is_a_conflict(
    catalog, lot_item, shelf, refused
):
    other = catalog.location()
    catalog.receive(lot_item, other, 4, lot="AWAY")
    body = refused(adjustment("damaged", delta(lot_item, shelf, -1, lot="AWAY")), 409)
    assert body["available"] == 0


def test_an_adjustment_whose_second_line_fails_changes_nothing(
    catalog, plain_item, lot_item, shelf, refused
):
    catalog.receive(plain_item, shelf, 10)
    catalog.receive(lot_item, shelf, 1, lot="ONE")
    refused(
        adjustment("count", delta(plain_item, shelf, -2), delta(lot_item, shelf, -2, lot="ONE")),
        409,
    )


# --- units entering stock -----------------------------------------------------------------------


def test_found_units_enter_stock_at_the_cost_given(warehouse, catalog, adjust, plain_item, shelf):
    catalog.receive(plain_item, shelf, 1, unit_cost="1.0000")
    document = adjust(adjustment("found", delta(plain_item, shelf, 6, unit_cost="0.7500")))
    [movement] = document["movements"]
    assert line_summary([movement]) == [(6, "0.7500", "adjustment", shelf["id"])]
    assert movement["total_cost"] == "4.5000"
    assert stock_of(warehouse, plain_item["id"]) == {(shelf["id"], None): 7}


def test_found_units_default_to_the_last_known_cost_of_the_item(catalog, adjust, plain_item, shelf):
    catalog.receive(plain_item, shelf, 10, unit_cost="1.0000", occurred_at=days_ago(2))
    catalog.receive(plain_item, shelf, 10, unit_cost="2.2500", occurred_at=days_ago(1))
    document = adjust(adjustment("found", delta(plain_item, shelf, 2)))
    assert [(m["quantity"], m["unit_cost"]) for m in document["movements"]] == [(2, "2.2500")]


def test_the_default_cost_is_the_latest_purchase_not_an_older_cost_moved_since(
    warehouse, catalog, adjust, plain_item, shelf
):
    catalog.receive(plain_item, shelf, 10, unit_cost="1.0000", occurred_at=days_ago(2))
    catalog.receive(plain_item, shelf, 10, unit_cost="2.2500", occurred_at=days_ago(1))
    # Moving and counting out the oldest units records their old cost on newer movements.
    other = catalog.location()
    ok(
        warehouse.post(
            "/transfers",
            {
                "lines": [
                    {
                        "item_id": plain_item["id"],
                        "quantity": 4,
                        "from_location_id": shelf["id"],
                        "to_location_id": other["id"],
                    }
                ]
            },
        ),
        201,
    )
    adjust(adjustment("count", delta(plain_item, shelf, -1)))

    document = adjust(adjustment("found", delta(plain_item, shelf, 1)))
    assert [m["unit_cost"] for m in document["movements"]] == ["2.2500"]


def test_found_units_of_a_known_lot_default_to_that_lots_cost(catalog, adjust, lot_item, shelf):
    catalog.receive(lot_item, shelf, 5, unit_cost="3.0000", lot="OLD", occurred_at=days_ago(3))
    catalog.receive(lot_item, shelf, 5, unit_cost="8.0000", lot="NEWER", occurred_at=days_ago(1))
    document = adjust(adjustment("found", delta(lot_item, shelf, 1, lot="OLD")))
    assert [(m["lot"], m["unit_cost"]) for m in document["movements"]] == [("OLD", "3.0000")]


def test_found_units_of_a_new_lot_default_to_the_items_last_cost(
    warehouse, catalog, adjust, lot_item, shelf
):
    catalog.receive(lot_item, shelf, 5, unit_cost="3.0000", lot="KNOWN")
    expiry = future_expiry(120)
    document = adjust(adjustment("found", delta(lot_item, shelf, 2, lot="FRESH", expiry=expiry)))
    [movement] = document["movements"]
    assert (movement["lot"], movement["expiry"], movement["unit_cost"]) == (
        "FRESH",
        expiry,
        "3.0000",
    )
    assert stock_of(warehouse, lot_item["id"]) == {
        (shelf["id"], "KNOWN"): 5,
        (shelf["id"], "FRESH"): 2,
    }


def test_an_explicit_zero_cost_is_kept_and_not_replaced_by_the_last_cost(
    catalog, adjust, plain_item, shelf
):
    catalog.receive(plain_item, shelf, 5, unit_cost="4.0000")
    document = adjust(adjustment("found", delta(plain_item, shelf, 2, unit_cost="0.0000")))
    assert [(m["unit_cost"], m["total_cost"]) for m in document["movements"]] == [
        ("0.0000", "0.0000")
    ]


def test_found_units_of_a_new_lot_need_its_expiry(catalog, lot_item, shelf, refused):
    catalog.receive(lot_item, shelf, 5, lot="KNOWN")
    body = refused(
        adjustment("found", delta(lot_item, shelf, 2, lot="UNSEEN", unit_cost="1.0000")), 422
    )
    assert list(body["errors"]) == ["lines.0.expiry"]


def test_found_units_of_a_known_lot_with_another_expiry_are_a_conflict(
    catalog, lot_item, shelf, refused
):
    catalog.receive(lot_item, shelf, 5, lot="SET", expiry=None)
    body = refused(
        adjustment("found", delta(lot_item, shelf, 1, lot="SET", expiry=future_expiry(3))), 409
    )
    assert "SET" in body["detail"]


def test_found_units_of_an_item_without_any_cost_history_need_a_cost(plain_item, shelf, refused):
    body = refused(adjustment("found", delta(plain_item, shelf, 3)), 422)
    assert list(body["errors"]) == ["lines.0.unit_cost"]


def test_a_count_up_adds_units_at_the_last_cost(warehouse, catalog, adjust, plain_item, shelf):
    catalog.receive(plain_item, shelf, 5, unit_cost="1.1000")
    document = adjust(adjustment("count", delta(plain_item, shelf, 2)))
    assert line_summary(document["movements"]) == [(2, "1.1000", "adjustment", shelf["id"])]
    assert stock_of(warehouse, plain_item["id"]) == {(shelf["id"], None): 7}


# --- serial units -------------------------------------------------------------------------------


def test_a_lost_serial_unit_can_be_found_again(warehouse, catalog, adjust, pump, shelf):
    catalog.receive(pump, shelf, 2, unit_cost="1200.0000", serials=["LF-1", "LF-2"])

    lost = adjust(adjustment("lost", delta(pump, shelf, -1, serial="LF-1")))
    assert [
        (m["serial"], m["quantity"], m["to"]["type"], m["unit_cost"]) for m in lost["movements"]
    ] == [("LF-1", 1, "adjustment", "1200.0000")]
    assert stock_of(warehouse, pump["id"]) == {(shelf["id"], None): 1}

    found = adjust(adjustment("found", delta(pump, shelf, 1, serial="LF-1")))
    assert [(m["serial"], m["from"]["type"], m["unit_cost"]) for m in found["movements"]] == [
        ("LF-1", "adjustment", "1200.0000")
    ]
    assert stock_of(warehouse, pump["id"]) == {(shelf["id"], None): 2}
    history = all_pages(warehouse, "/movements", item_id=pump["id"], type="adjustment")
    assert [(m["serial"], m["reason"]) for m in history] == [("LF-1", "lost"), ("LF-1", "found")]


def test_a_serial_unit_already_in_stock_cannot_be_found(catalog, pump, shelf, refused):
    catalog.receive(pump, shelf, 1, serials=["HERE-1"])
    body = refused(adjustment("found", delta(pump, shelf, 1, serial="HERE-1")), 409)
    assert "HERE-1" in body["detail"]


def test_a_serial_unit_moves_one_at_a_time_in_adjustments(catalog, pump, shelf, refused):
    catalog.receive(pump, shelf, 2, serials=["ONE-1", "ONE-2"])
    body = refused(adjustment("lost", delta(pump, shelf, -2, serial="ONE-1")), 422)
    assert list(body["errors"]) == ["lines.0.quantity_delta"]


def test_a_serial_unit_must_be_named(catalog, pump, shelf, refused):
    catalog.receive(pump, shelf, 1)
    body = refused(adjustment("lost", delta(pump, shelf, -1)), 422)
    assert list(body["errors"]) == ["lines.0.serial"]


# --- refused input ------------------------------------------------------------------------------


def test_a_zero_delta_is_refused(catalog, plain_item, shelf, refused):
    catalog.receive(plain_item, shelf, 5)
    body = refused(adjustment("count", delta(plain_item, shelf, 0)), 422)
    assert list(body["errors"]) == ["lines.0.quantity_delta"]


@pytest.mark.parametrize(
    ("reason", "quantity_delta"),
    [("found", -1), ("damaged", 1), ("lost", 2), ("expired", 1), ("recalled", 1)],
)
def test_a_delta_in_the_wrong_direction_for_its_reason_is_refused(
    catalog, plain_item, shelf, refused, reason, quantity_delta
):
    catalog.receive(plain_item, shelf, 5)
    body = refused(
        adjustment(reason, delta(plain_item, shelf, quantity_delta, unit_cost="1.0000")), 422
    )
    assert list(body["errors"]) == ["lines.0.quantity_delta"]


@pytest.mark.parametrize("reason", ["stolen", "", None, 3])
def test_an_unknown_reason_is_refused(catalog, plain_item, shelf, refused, reason):
    catalog.receive(plain_item, shelf, 5)
    body = refused(adjustment(reason, delta(plain_item, shelf, -1)), 422)
    assert list(body["errors"]) == ["reason"]


def test_a_missing_reason_is_refused(catalog, plain_item, shelf, refused):
    catalog.receive(plain_item, shelf, 5)
    body = refused({"lines": [delta(plain_item, shelf, -1)]}, 422)
    assert list(body["errors"]) == ["reason"]


def test_a_lot_on_an_untracked_item_is_refused(catalog, plain_item, shelf, refused):
    catalog.receive(plain_item, shelf, 5)
    body = refused(adjustment("count", delta(plain_item, shelf, -1, lot="X1")), 422)
    assert list(body["errors"]) == ["lines.0.lot"]


def test_an_unknown_lot_is_refused(catalog, lot_item, shelf, refused):
    catalog.receive(lot_item, shelf, 5, lot="REAL")
    body = refused(adjustment("damaged", delta(lot_item, shelf, -1, lot="FAKE")), 422)
    assert list(body["errors"]) == ["lines.0.lot"]


def test_an_unknown_item_and_location_are_refused_naming_each(refused):
    body = refused(
        adjustment("lost", {"item_id": 999_991, "location_id": 999_992, "quantity_delta": -1}), 422
    )
    assert body["errors"] == {
        "lines.0.item_id": ["No item 999991."],
        "lines.0.location_id": ["No location 999992."],
    }


def test_a_float_unit_cost_is_refused(catalog, plain_item, shelf, refused):
    catalog.receive(plain_item, shelf, 5)
    body = refused(adjustment("found", delta(plain_item, shelf, 1, unit_cost=0.5)), 422)
    assert list(body["errors"]) == ["lines.0.unit_cost"]


def test_an_adjustment_dated_in_the_future_is_refused(catalog, plain_item, shelf, refused):
    catalog.receive(plain_item, shelf, 5)
    body = refused(adjustment("lost", delta(plain_item, shelf, -1), occurred_at=days_ago(-2)), 422)
    assert list(body["errors"]) == ["occurred_at"]


@pytest.mark.parametrize("role", [Role.DRIVER, Role.FINANCE, Role.COORDINATOR])
def test_only_warehouse_and_admin_may_adjust(as_role, catalog, plain_item, shelf, role):
    catalog.receive(plain_item, shelf, 5)
    problem(
        as_role(role).post("/adjustments", adjustment("lost", delta(plain_item, shelf, -1))), 403
    )


def test_admin_may_adjust(admin, catalog, plain_item, shelf):
    catalog.receive(plain_item, shelf, 5)
    document = ok(admin.post("/adjustments", adjustment("lost", delta(plain_item, shelf, -1))), 201)
    assert document["actor"]["id"] == ok(admin.get("/me"))["id"]


def test_an_adjustment_cannot_remove_reserved_units(database, catalog, plain_item, shelf, refused):
    catalog.receive(plain_item, shelf, 10)
    set_reserved(database, plain_item["id"], shelf["id"], 8)
    body = refused(adjustment("damaged", delta(plain_item, shelf, -3)), 409)
    assert "reserved" in body["detail"]
    assert (body["available"], body["reserved"]) == (2, 8)
