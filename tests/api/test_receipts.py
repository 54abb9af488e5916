"""POST /receipts: booking vendor deliveries into stock, all lines or none."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest

from inventory.users.models import Role
from tests.api.ledger_helpers import (
    all_pages,
    days_ago,
    future_expiry,
    ledger_snapshot,
    me,
    stock_of,
)
from tests.builders import ok, problem, unique


def line(
    item: dict[str, Any], location: dict[str, Any], quantity: int = 5, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "item_id": item["id"],
        "quantity": quantity,
        "unit_cost": "2.5000",
        "location_id": location["id"],
    }
    if item["tracking"] == "lot":
        body["lot"] = unique("LOT")
        body["expiry"] = future_expiry()
    if item["tracking"] == "serial":
        body["serials"] = [unique("SN") for _ in range(quantity)]
    body.update(fields)
    return {key: value for key, value in body.items() if value is not ...}


@pytest.fixture
def lot_item(catalog):
    return catalog.item(tracking="lot")


@pytest.fixture
def plain_item(catalog):
    return catalog.item(tracking="none", category="ppe")


@pytest.fixture
def pump(catalog):
    return catalog.item(tracking="serial", category="pump")


@pytest.fixture
def shelf(catalog):
    return catalog.location()


@pytest.fixture
def refused(warehouse, database):
    """Post a receipt that must be refused with ``status`` and change nothing at all."""

    def post(body: Any, status: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
        before = ledger_snapshot(warehouse, database)
        response = warehouse.post("/receipts", body, headers=headers)
        result = problem(response, status)
        assert ledger_snapshot(warehouse, database) == before
        return result

    return post


# --- what a receipt books ---------------------------------------------------------------------


def test_a_lot_tracked_receipt_moves_units_from_the_supplier_at_their_unit_cost(
    warehouse, lot_item, shelf
):
    expiry = future_expiry(200)
    body = {
        "reference": "PO-1001",
        "lines": [line(lot_item, shelf, 12, lot="L-77", expiry=expiry, unit_cost="3.1250")],
    }
    receipt = ok(warehouse.post("/receipts", body), 201)

    assert receipt["type"] == "receipt"
    assert receipt["reference"] == "PO-1001"
    assert receipt["total_cost"] == "37.5000"
    [movement] = receipt["movements"]
    assert movement["type"] == "receipt"
    assert movement["item_id"] == lot_item["id"]
    assert (movement["lot"], movement["expiry"], movement["serial"]) == ("L-77", expiry, None)
    assert movement["quantity"] == 12
    assert movement["from"] == {"type": "supplier", "location_id": None, "code": None}
    assert movement["to"] == {"type": "location", "location_id": shelf["id"], "code": shelf["code"]}
    assert (movement["unit_cost"], movement["total_cost"]) == ("3.1250", "37.5000")
    assert movement["reference"] == "PO-1001"
    assert movement["actor"]["id"] == me(warehouse)["id"]

    [row] = ok(warehouse.get("/stock", item_id=lot_item["id"]))["items"]
    assert (row["lot"], row["expiry"], row["location_id"]) == ("L-77", expiry, shelf["id"])
    assert (row["on_hand"], row["reserved"], row["available"]) == (12, 0, 12)


def test_an_untracked_receipt_books_units_without_a_lot(warehouse, plain_item, shelf):
    receipt = ok(
        warehouse.post("/receipts", {"lines": [line(plain_item, shelf, 40, unit_cost="0.0500")]}),
        201,
    )

    [movement] = receipt["movements"]
    assert (movement["lot"], movement["serial"], movement["quantity"]) == (None, None, 40)
    assert movement["unit_cost"] == "0.0500"
    assert receipt["total_cost"] == "2.0000"
    assert stock_of(warehouse, plain_item["id"]) == {(shelf["id"], None): 40}


def test_a_serial_receipt_books_one_movement_per_serial(warehouse, pump, shelf):
    body = {"lines": [line(pump, shelf, 3, serials=["P-1", "P-2", "P-3"], unit_cost="1500.0000")]}
    receipt = ok(warehouse.post("/receipts", body), 201)

    assert [(m["serial"], m["quantity"], m["unit_cost"]) for m in receipt["movements"]] == [
        ("P-1", 1, "1500.0000"),
        ("P-2", 1, "1500.0000"),
        ("P-3", 1, "1500.0000"),
    ]
    assert receipt["total_cost"] == "4500.0000"
    ledger = all_pages(warehouse, "/movements", item_id=pump["id"])
    assert sorted(m["serial"] for m in ledger) == ["P-1", "P-2", "P-3"]
    assert stock_of(warehouse, pump["id"]) == {(shelf["id"], None): 3}


def test_a_receipt_into_quarantine_is_accepted(warehouse, plain_item, catalog):
    quarantine = catalog.location(kind="quarantine")
    receipt = ok(warehouse.post("/receipts", {"lines": [line(plain_item, quarantine, 4)]}), 201)
    assert receipt["movements"][0]["to"]["location_id"] == quarantine["id"]


def test_a_multi_line_receipt_books_every_line_in_one_document(
    warehouse, lot_item, plain_item, shelf
):
    body = {"lines": [line(lot_item, shelf, 5), line(plain_item, shelf, 7)]}
    receipt = ok(warehouse.post("/receipts", body), 201)
    assert [(m["item_id"], m["quantity"]) for m in receipt["movements"]] == [
        (lot_item["id"], 5),
        (plain_item["id"], 7),
    ]
    assert {m["document_id"] for m in receipt["movements"]} == {receipt["id"]}


def test_a_second_receipt_of_a_known_lot_without_expiry_is_refused(
    warehouse, lot_item, shelf, refused
):
    ok(warehouse.post("/receipts", {"lines": [line(lot_item, shelf, 5, lot="KNOWN")]}), 201)
    body = refused({"lines": [line(lot_item, shelf, 5, lot="KNOWN", expiry=None)]}, 422)
    assert list(body["errors"]) == ["lines.0.expiry"]


def test_a_second_receipt_of_a_known_lot_with_the_same_expiry_adds_to_it(
    warehouse, lot_item, shelf
):
    expiry = future_expiry(90)
    ok(
        warehouse.post("/receipts", {"lines": [line(lot_item, shelf, 5, lot="K2", expiry=expiry)]}),
        201,
    )
    ok(
        warehouse.post("/receipts", {"lines": [line(lot_item, shelf, 6, lot="K2", expiry=expiry)]}),
        201,
    )
    assert stock_of(warehouse, lot_item["id"]) == {(shelf["id"], "K2"): 11}


# --- all or nothing ---------------------------------------------------------------------------


def test_a_receipt_whose_second_line_is_invalid_changes_nothing(
    warehouse, lot_item, pump, shelf, refused
):
    good_lot = line(lot_item, shelf, 5, lot="NEW-LOT")
    good_serials = line(pump, shelf, 1, serials=["PUMP-A"])
    bad = line(lot_item, shelf, 5, lot="OTHER", expiry=None)
    body = refused({"lines": [good_lot, good_serials, bad]}, 422)
    assert list(body["errors"]) == ["lines.2.expiry"]

    # The lot and serial the first lines created were rolled back: receiving them again works.
    receipt = ok(warehouse.post("/receipts", {"lines": [good_lot, good_serials]}), 201)
    assert [m["lot"] or m["serial"] for m in receipt["movements"]] == ["NEW-LOT", "PUMP-A"]


def test_a_receipt_whose_second_line_has_too_few_serials_changes_nothing(
    warehouse, plain_item, pump, shelf, refused
):
    body = refused(
        {"lines": [line(plain_item, shelf, 5), line(pump, shelf, 2, serials=["ONLY-ONE"])]}, 422
    )
    assert "lines.1.quantity" in body["errors"]


# --- bad input leaves the ledger unchanged ------------------------------------------------------


def test_an_unknown_item_is_refused_naming_the_line(refused, shelf, lot_item):
    body = refused({"lines": [line(lot_item, shelf, 5, item_id=999_999)]}, 422)
    assert body["errors"]["lines.0.item_id"] == ["No item 999999."]


def test_an_unknown_location_is_refused_naming_the_line(refused, lot_item):
    body = refused({"lines": [line(lot_item, {"id": 999_999}, 5)]}, 422)
    assert body["errors"]["lines.0.location_id"] == ["No location 999999."]


@pytest.mark.parametrize("quantity", [0, -3])
def test_a_quantity_that_is_not_positive_is_refused(refused, plain_item, shelf, quantity):
    body = refused({"lines": [line(plain_item, shelf, quantity)]}, 422)
    assert list(body["errors"]) == ["lines.0.quantity"]


def test_a_lot_tracked_item_without_a_lot_is_refused(refused, lot_item, shelf):
    body = refused({"lines": [line(lot_item, shelf, 5, lot=...)]}, 422)
    assert list(body["errors"]) == ["lines.0.lot"]


def test_a_lot_tracked_item_without_an_expiry_is_refused(refused, lot_item, shelf):
    body = refused({"lines": [line(lot_item, shelf, 5, expiry=...)]}, 422)
    assert list(body["errors"]) == ["lines.0.expiry"]


def test_a_lot_on_an_untracked_item_is_refused(refused, plain_item, shelf):
    body = refused({"lines": [line(plain_item, shelf, 5, lot="L1", expiry=future_expiry())]}, 422)
    assert list(body["errors"]) == ["lines.0.lot"]


def test_an_expiry_on_an_untracked_item_is_refused(refused, plain_item, shelf):
    body = refused({"lines": [line(plain_item, shelf, 5, expiry=future_expiry())]}, 422)
    assert list(body["errors"]) == ["lines.0.expiry"]


def test_serials_on_an_unserialized_item_are_refused(refused, plain_item, shelf):
    body = refused({"lines": [line(plain_item, shelf, 1, serials=["X1"])]}, 422)
    assert list(body["errors"]) == ["lines.0.serials"]


def test_a_serial_item_without_serials_is_refused(refused, pump, shelf):
    body = refused({"lines": [line(pump, shelf, 1, serials=...)]}, 422)
    assert list(body["errors"]) == ["lines.0.serials"]


@pytest.mark.parametrize("serials", [["S-1"], ["S-1", "S-2", "S-3"]])
def test_a_serial_count_that_differs_from_the_quantity_is_refused(refused, pump, shelf, serials):
    body = refused({"lines": [line(pump, shelf, 2, serials=serials)]}, 422)
    assert list(body["errors"]) == ["lines.0.quantity"]


def test_the_same_serial_twice_in_one_line_is_refused(refused, pump, shelf):
    body = refused({"lines": [line(pump, shelf, 2, serials=["TWIN", "TWIN"])]}, 422)
    assert list(body["errors"]) == ["lines.0.serials"]


def test_a_serial_already_in_stock_is_a_conflict(warehouse, refused, pump, shelf):
    ok(warehouse.post("/receipts", {"lines": [line(pump, shelf, 1, serials=["DUP-1"])]}), 201)
    body = refused({"lines": [line(pump, shelf, 2, serials=["NEW-9", "DUP-1"])]}, 409)
    assert "DUP-1" in body["detail"]
    assert stock_of(warehouse, pump["id"]) == {(shelf["id"], None): 1}


def test_an_already_expired_lot_is_refused(refused, lot_item, shelf):
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    body = refused({"lines": [line(lot_item, shelf, 5, expiry=yesterday)]}, 422)
    assert list(body["errors"]) == ["lines.0.expiry"]
    assert "expired" in body["errors"]["lines.0.expiry"][0]


def test_an_existing_lot_with_a_different_expiry_is_a_conflict(warehouse, refused, lot_item, shelf):
    first = future_expiry(100)
    ok(
        warehouse.post("/receipts", {"lines": [line(lot_item, shelf, 5, lot="EXP", expiry=first)]}),
        201,
    )
    body = refused({"lines": [line(lot_item, shelf, 5, lot="EXP", expiry=future_expiry(101))]}, 409)
    assert first in body["detail"]


def test_a_unit_cost_sent_as_a_float_is_refused(refused, plain_item, shelf):
    body = refused({"lines": [line(plain_item, shelf, 5, unit_cost=2.5)]}, 422)
    assert list(body["errors"]) == ["lines.0.unit_cost"]
    assert "decimal string" in body["errors"]["lines.0.unit_cost"][0]


@pytest.mark.parametrize("cost", ["-1.0000", "1.00001", "abc", "NaN", "100000000.0000"])
def test_a_unit_cost_that_is_not_a_valid_amount_is_refused(refused, plain_item, shelf, cost):
    body = refused({"lines": [line(plain_item, shelf, 5, unit_cost=cost)]}, 422)
    assert list(body["errors"]) == ["lines.0.unit_cost"]


def test_a_receipt_without_lines_is_refused(refused):
    body = refused({"reference": "PO-EMPTY"}, 422)
    assert list(body["errors"]) == ["lines"]


def test_a_receipt_with_an_empty_list_of_lines_is_refused(refused):
    body = refused({"lines": []}, 422)
    assert list(body["errors"]) == ["lines"]


def test_wrongly_typed_fields_are_refused_field_by_field(refused, plain_item, shelf):
    bad = {
        "item_id": str(plain_item["id"]),
        "quantity": 5.0,
        "unit_cost": "1.0000",
        "location_id": True,
    }
    body = refused({"reference": 42, "lines": [bad]}, 422)
    assert set(body["errors"]) == {
        "reference",
        "lines.0.item_id",
        "lines.0.quantity",
        "lines.0.location_id",
    }


def test_lines_that_are_not_a_list_are_refused(refused, plain_item, shelf):
    body = refused({"lines": line(plain_item, shelf, 5)}, 422)
    assert list(body["errors"]) == ["lines"]


def test_unknown_fields_are_refused(refused, plain_item, shelf):
    body = refused({"vendor": "ACME", "lines": [line(plain_item, shelf, 5, colour="red")]}, 422)
    assert set(body["errors"]) == {"vendor", "lines.0.colour"}


@pytest.mark.parametrize("kind", ["vehicle", "staging", "cleaning", "repair"])
def test_receiving_anywhere_but_storage_or_quarantine_is_refused(
    refused, catalog, plain_item, kind
):
    place = catalog.location(kind=kind)
    body = refused({"lines": [line(plain_item, place, 5)]}, 422)
    assert list(body["errors"]) == ["lines.0.location_id"]


def test_a_receipt_dated_in_the_future_is_refused(refused, plain_item, shelf):
    body = refused({"occurred_at": days_ago(-1), "lines": [line(plain_item, shelf, 5)]}, 422)
    assert list(body["errors"]) == ["occurred_at"]


def test_a_receipt_dated_without_an_offset_is_refused(refused, plain_item, shelf):
    body = refused(
        {"occurred_at": "2025-01-02T10:00:00", "lines": [line(plain_item, shelf, 5)]}, 422
    )
    assert list(body["errors"]) == ["occurred_at"]


def test_a_backdated_receipt_keeps_its_occurred_at(warehouse, plain_item, shelf):
    receipt = ok(
        warehouse.post(
            "/receipts",
            {"occurred_at": "2025-03-04T10:00:00-05:00", "lines": [line(plain_item, shelf, 5)]},
        ),
        201,
    )
    assert receipt["movements"][0]["occurred_at"] == "2025-03-04T15:00:00+00:00"
    assert receipt["movements"][0]["recorded_at"] > "2025-03-05"


def test_receipts_spanning_two_sites_are_refused(refused, catalog, plain_item, shelf):
    elsewhere = catalog.location(site="SITE2")
    body = refused({"lines": [line(plain_item, shelf, 5), line(plain_item, elsewhere, 5)]}, 422)
    assert "site" in body["detail"]


def test_a_body_over_the_size_limit_is_refused_with_413(warehouse, database, plain_item, shelf):
    before = ledger_snapshot(warehouse, database)
    body = {"note": "x" * 1_100_000, "lines": [line(plain_item, shelf, 5)]}
    result = problem(warehouse.post("/receipts", body), 413)
    assert "1048576" in result["detail"]
    assert ledger_snapshot(warehouse, database) == before


def test_malformed_json_is_refused_with_400(warehouse, database):
    before = ledger_snapshot(warehouse, database)
    response = warehouse.client.post(
        "/api/v1/receipts",
        data='{"lines": [',
        content_type="application/json",
        headers={"Authorization": f"Bearer {warehouse.token}"},
    )
    result = problem(response, 400)
    assert result["detail"] == "The request body is not valid JSON."
    assert ledger_snapshot(warehouse, database) == before


@pytest.mark.parametrize("role", [Role.DRIVER, Role.FINANCE, Role.COORDINATOR])
def test_only_warehouse_and_admin_may_receive(as_role, plain_item, shelf, role):
    api = as_role(role)
    response = api.post("/receipts", {"lines": [line(plain_item, shelf, 5)]})
    problem(response, 403)


def test_a_receipt_without_a_token_is_401(warehouse, plain_item, shelf):
    response = warehouse.client.post(
        "/api/v1/receipts",
        data=json.dumps({"lines": [line(plain_item, shelf, 5)]}),
        content_type="application/json",
    )
    problem(response, 401)


# --- idempotency ------------------------------------------------------------------------------


def test_replaying_a_receipt_with_its_key_returns_the_first_response_and_books_once(
    warehouse, plain_item, shelf
):
    body = {"reference": "PO-IDEM", "lines": [line(plain_item, shelf, 9)]}
    headers = {"Idempotency-Key": "receipt-abc-1"}
    first = warehouse.post("/receipts", body, headers=headers)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers

    again = warehouse.post("/receipts", body, headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    assert again.content_type == first.content_type

    ledger = all_pages(warehouse, "/movements", item_id=plain_item["id"])
    assert [(m["document_id"], m["quantity"]) for m in ledger] == [(first.get_json()["id"], 9)]
    assert stock_of(warehouse, plain_item["id"]) == {(shelf["id"], None): 9}


def test_a_replay_with_the_keys_in_another_order_still_counts_as_the_same_body(
    warehouse, plain_item, shelf
):
    body = {"reference": "PO-ORDER", "lines": [line(plain_item, shelf, 3)]}
    headers = {"Idempotency-Key": "receipt-order"}
    ok(warehouse.post("/receipts", body, headers=headers), 201)
    reordered = {"lines": [dict(reversed(list(body["lines"][0].items())))], "reference": "PO-ORDER"}
    again = warehouse.post("/receipts", reordered, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert stock_of(warehouse, plain_item["id"]) == {(shelf["id"], None): 3}


def test_the_same_key_with_a_different_body_is_refused(warehouse, database, plain_item, shelf):
    headers = {"Idempotency-Key": "receipt-abc-2"}
    ok(warehouse.post("/receipts", {"lines": [line(plain_item, shelf, 9)]}, headers=headers), 201)
    before = ledger_snapshot(warehouse, database)
    result = problem(
        warehouse.post("/receipts", {"lines": [line(plain_item, shelf, 10)]}, headers=headers), 422
    )
    assert list(result["errors"]) == ["Idempotency-Key"]
    assert ledger_snapshot(warehouse, database) == before
    assert stock_of(warehouse, plain_item["id"]) == {(shelf["id"], None): 9}


def test_an_idempotency_key_is_scoped_to_its_user(as_role, warehouse, plain_item, shelf):
    colleague = as_role(Role.WAREHOUSE)
    body = {"lines": [line(plain_item, shelf, 4)]}
    headers = {"Idempotency-Key": "shared-key"}
    mine = ok(warehouse.post("/receipts", body, headers=headers), 201)
    response = colleague.post("/receipts", body, headers=headers)
    theirs = ok(response, 201)

    assert "Idempotent-Replayed" not in response.headers
    assert theirs["id"] != mine["id"]
    assert theirs["actor"]["id"] == me(colleague)["id"]
    assert stock_of(warehouse, plain_item["id"]) == {(shelf["id"], None): 8}


def test_a_key_whose_first_request_failed_can_be_used_again(warehouse, plain_item, shelf):
    headers = {"Idempotency-Key": "first-failed"}
    problem(
        warehouse.post("/receipts", {"lines": [line(plain_item, shelf, 0)]}, headers=headers), 422
    )
    response = warehouse.post("/receipts", {"lines": [line(plain_item, shelf, 2)]}, headers=headers)
    ok(response, 201)
    assert "Idempotent-Replayed" not in response.headers
    assert stock_of(warehouse, plain_item["id"]) == {(shelf["id"], None): 2}


@pytest.mark.parametrize("key", ["", "k" * 256, "bad\x01key"])
def test_an_unusable_idempotency_key_is_refused(refused, plain_item, shelf, key):
    body = refused({"lines": [line(plain_item, shelf, 2)]}, 422, headers={"Idempotency-Key": key})
    assert list(body["errors"]) == ["Idempotency-Key"]


@pytest.mark.parametrize(
    "body",
    [[], "lines", None, {"lines": [None]}, {"lines": [[]]}, {"lines": None}],
    ids=["list", "string", "empty-object", "null-line", "list-line", "null-lines"],
)
def test_a_body_of_the_wrong_shape_is_refused_with_422(refused, body):
    result = refused(body, 422)
    assert result["errors"]


def test_an_oversized_body_with_an_idempotency_key_is_still_413(
    warehouse, database, plain_item, shelf
):
    before = ledger_snapshot(warehouse, database)
    body = {"note": "x" * 1_100_000, "lines": [line(plain_item, shelf, 5)]}
    problem(warehouse.post("/receipts", body, headers={"Idempotency-Key": "big"}), 413)
    assert ledger_snapshot(warehouse, database) == before


def test_malformed_json_with_an_idempotency_key_is_still_400(warehouse, database):
    before = ledger_snapshot(warehouse, database)
    response = warehouse.client.post(
        "/api/v1/receipts",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {warehouse.token}", "Idempotency-Key": "broken"},
    )
    problem(response, 400)
    assert ledger_snapshot(warehouse, database) == before


def test_an_occurred_at_with_no_utc_form_is_refused(refused, plain_item, shelf):
    body = refused(
        {"occurred_at": "0001-01-01T00:00:00+14:00", "lines": [line(plain_item, shelf, 5)]}, 422
    )
    assert list(body["errors"]) == ["occurred_at"]
