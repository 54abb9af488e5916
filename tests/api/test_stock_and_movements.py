"""GET /stock and GET /movements: filters, row shapes, paging and who may read them."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from inventory.users.models import Role
from tests.api.ledger_helpers import all_pages, me, set_reserved
from tests.builders import ok, problem

MOVEMENT_FIELDS = {
    "id",
    "type",
    "item_id",
    "lot",
    "serial",
    "quantity",
    "from",
    "to",
    "unit_cost",
    "total_cost",
    "occurred_at",
    "recorded_at",
    "actor",
    "reason",
    "reference",
}
STOCK_FIELDS = {"item_id", "lot", "expiry", "location_id", "on_hand", "reserved", "available"}
FOUR_PLACES = re.compile(r"^\d+\.\d{4}$")


def in_days(days: int) -> date:
    return date.today() + timedelta(days=days)


@pytest.fixture
def plain_item(catalog):
    return catalog.item(tracking="none", category="ppe")


@pytest.fixture
def lot_item(catalog):
    return catalog.item(tracking="lot")


@pytest.fixture
def shelf(catalog):
    return catalog.location()


@pytest.fixture
def other_shelf(catalog):
    return catalog.location()


def transfer(api, item, source, target, quantity, **line: Any) -> dict[str, Any]:
    body = {
        "lines": [
            {
                "item_id": item["id"],
                "quantity": quantity,
                "from_location_id": source["id"],
                "to_location_id": target["id"],
                **line,
            }
        ]
    }
    return ok(api.post("/transfers", body), 201)


def keys(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(row["item_id"], row["lot"], row["location_id"], row["on_hand"]) for row in rows]


# --- GET /stock -----------------------------------------------------------------------------------


def test_stock_rows_show_on_hand_reserved_and_available(
    warehouse, database, catalog, lot_item, shelf
):
    expiry = in_days(200)
    catalog.receive(lot_item, shelf, 10, lot="ROW-1", expiry=expiry)
    set_reserved(database, lot_item["id"], shelf["id"], 3)

    [row] = ok(warehouse.get("/stock", item_id=lot_item["id"]))["items"]
    assert set(row) >= STOCK_FIELDS
    assert row["item_id"] == lot_item["id"]
    assert (row["lot"], row["expiry"], row["location_id"]) == (
        "ROW-1",
        expiry.isoformat(),
        shelf["id"],
    )
    assert (row["on_hand"], row["reserved"], row["available"]) == (10, 3, 7)
    assert (row["sku"], row["location_code"], row["site"]) == (
        lot_item["sku"],
        shelf["code"],
        "SITE1",
    )


def test_stock_filters_by_item(warehouse, catalog, plain_item, lot_item, shelf):
    catalog.receive(plain_item, shelf, 4)
    catalog.receive(lot_item, shelf, 5, lot="I-1")
    assert keys(ok(warehouse.get("/stock", item_id=plain_item["id"]))["items"]) == [
        (plain_item["id"], None, shelf["id"], 4)
    ]


def test_stock_filters_by_location(warehouse, catalog, plain_item, shelf, other_shelf):
    catalog.receive(plain_item, shelf, 4)
    catalog.receive(plain_item, other_shelf, 6)
    assert keys(ok(warehouse.get("/stock", location_id=other_shelf["id"]))["items"]) == [
        (plain_item["id"], None, other_shelf["id"], 6)
    ]


def test_stock_filters_by_lot_number(warehouse, catalog, lot_item, shelf):
    catalog.receive(lot_item, shelf, 4, lot="WANTED")
    catalog.receive(lot_item, shelf, 6, lot="OTHER")
    assert keys(ok(warehouse.get("/stock", lot="WANTED"))["items"]) == [
        (lot_item["id"], "WANTED", shelf["id"], 4)
    ]


def test_stock_expiring_before_lists_only_lots_expiring_before_that_date(
    warehouse, catalog, lot_item, plain_item, shelf
):
    catalog.receive(lot_item, shelf, 1, lot="SOON", expiry=in_days(30))
    catalog.receive(lot_item, shelf, 2, lot="EDGE", expiry=in_days(60))
    catalog.receive(lot_item, shelf, 3, lot="LATE", expiry=in_days(90))
    catalog.receive(plain_item, shelf, 9)
    rows = ok(warehouse.get("/stock", expiring_before=in_days(60).isoformat()))["items"]
    assert [(row["lot"], row["on_hand"]) for row in rows] == [("SOON", 1)]


def test_stock_filters_by_site(warehouse, catalog, plain_item, shelf):
    far_away = catalog.location(site="SITE2")
    catalog.receive(plain_item, shelf, 4)
    catalog.receive(plain_item, far_away, 7)
    rows = ok(warehouse.get("/stock", site="SITE2"))["items"]
    assert [(row["location_id"], row["site"], row["on_hand"]) for row in rows] == [
        (far_away["id"], "SITE2", 7)
    ]


def test_stock_hides_empty_rows_unless_asked(warehouse, catalog, plain_item, shelf, other_shelf):
    catalog.receive(plain_item, shelf, 4)
    transfer(warehouse, plain_item, shelf, other_shelf, 4)
    assert keys(ok(warehouse.get("/stock", item_id=plain_item["id"]))["items"]) == [
        (plain_item["id"], None, other_shelf["id"], 4)
    ]
    everything = ok(warehouse.get("/stock", item_id=plain_item["id"], include_empty="true"))[
        "items"
    ]
    assert keys(everything) == [
        (plain_item["id"], None, shelf["id"], 0),
        (plain_item["id"], None, other_shelf["id"], 4),
    ]


def test_stock_filters_combine(warehouse, catalog, lot_item, shelf, other_shelf):
    catalog.receive(lot_item, shelf, 1, lot="C-1")
    catalog.receive(lot_item, other_shelf, 2, lot="C-1")
    catalog.receive(lot_item, other_shelf, 3, lot="C-2")
    rows = ok(warehouse.get("/stock", lot="C-1", location_id=other_shelf["id"]))["items"]
    assert keys(rows) == [(lot_item["id"], "C-1", other_shelf["id"], 2)]


@pytest.mark.parametrize("limit", [1, 3, 4, 7])
def test_stock_paging_visits_every_row_exactly_once(warehouse, catalog, plain_item, limit):
    places = [catalog.location() for _ in range(7)]
    for number, place in enumerate(places, start=1):
        catalog.receive(plain_item, place, number)

    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"item_id": plain_item["id"], "limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = ok(warehouse.get("/stock", **params))
        assert 0 < len(page["items"]) <= limit
        seen.extend(row["location_id"] for row in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [place["id"] for place in places]
    assert pages == -(-7 // limit)


def test_stock_defaults_to_pages_of_fifty(warehouse, catalog, plain_item):
    for _ in range(51):
        catalog.receive(plain_item, catalog.location(), 1)
    page = ok(warehouse.get("/stock", item_id=plain_item["id"]))
    assert len(page["items"]) == 50
    assert page["next_cursor"] is not None
    rest = ok(warehouse.get("/stock", item_id=plain_item["id"], cursor=page["next_cursor"]))
    assert (len(rest["items"]), rest["next_cursor"]) == (1, None)


@pytest.mark.parametrize("cursor", ["garbage", "eyJhZnRlciI6ICJ4In0", "e30"])
def test_a_cursor_the_service_did_not_issue_is_refused(warehouse, cursor):
    body = problem(warehouse.get("/stock", cursor=cursor), 422)
    assert list(body["errors"]) == ["cursor"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("limit", 501), ("limit", 0), ("item_id", "abc"), ("item_id", 0), ("expiring_before", "soon")],
)
def test_bad_stock_filters_are_refused(warehouse, name, value):
    body = problem(warehouse.get("/stock", **{name: value}), 422)
    assert list(body["errors"]) == [name]


@pytest.mark.parametrize(
    "filters",
    [{"item_id": 999_999}, {"location_id": 999_999}, {"lot": "NO-SUCH"}, {"site": "NOWHERE"}],
)
def test_stock_filters_naming_nothing_return_an_empty_list(
    warehouse, catalog, lot_item, shelf, filters
):
    catalog.receive(lot_item, shelf, 5)
    assert ok(warehouse.get("/stock", **filters)) == {"items": [], "next_cursor": None}


# --- GET /movements -------------------------------------------------------------------------------


def test_a_movement_row_carries_every_contract_field(warehouse, catalog, lot_item, shelf):
    receipt = catalog.receive(lot_item, shelf, 3, unit_cost="1.3333", lot="F-1", reference="PO-77")
    [row] = ok(warehouse.get("/movements", item_id=lot_item["id"]))["items"]

    assert set(row) >= MOVEMENT_FIELDS
    assert row["id"] == receipt["movements"][0]["id"]
    assert (row["type"], row["item_id"], row["lot"], row["serial"]) == (
        "receipt",
        lot_item["id"],
        "F-1",
        None,
    )
    assert row["quantity"] == 3
    assert row["from"]["type"] == "supplier"
    assert row["to"] == {"type": "location", "location_id": shelf["id"], "code": shelf["code"]}
    assert FOUR_PLACES.match(row["unit_cost"]) and row["unit_cost"] == "1.3333"
    assert FOUR_PLACES.match(row["total_cost"]) and row["total_cost"] == "3.9999"
    for stamp in ("occurred_at", "recorded_at"):
        parsed = datetime.fromisoformat(row[stamp])
        assert parsed.utcoffset() == timedelta(0)
    assert row["actor"] == {"id": me(warehouse)["id"], "name": me(warehouse)["name"]}
    assert (row["reason"], row["reference"]) == (None, "PO-77")
    assert row["document_id"] == receipt["id"]


def test_movements_are_listed_oldest_first(warehouse, catalog, plain_item, shelf, other_shelf):
    catalog.receive(plain_item, shelf, 5)
    transfer(warehouse, plain_item, shelf, other_shelf, 2)
    rows = ok(warehouse.get("/movements", item_id=plain_item["id"]))["items"]
    assert [row["type"] for row in rows] == ["receipt", "transfer"]
    assert rows[0]["id"] < rows[1]["id"]


def test_movements_filter_by_item(warehouse, catalog, plain_item, lot_item, shelf):
    catalog.receive(plain_item, shelf, 5)
    catalog.receive(lot_item, shelf, 6)
    rows = ok(warehouse.get("/movements", item_id=lot_item["id"]))["items"]
    assert [(row["item_id"], row["quantity"]) for row in rows] == [(lot_item["id"], 6)]


def test_movements_filter_by_lot(warehouse, catalog, lot_item, shelf):
    catalog.receive(lot_item, shelf, 5, lot="LOT-X")
    catalog.receive(lot_item, shelf, 6, lot="LOT-Y")
    rows = ok(warehouse.get("/movements", lot="LOT-Y"))["items"]
    assert [(row["lot"], row["quantity"]) for row in rows] == [("LOT-Y", 6)]


def test_movements_filter_by_type(warehouse, catalog, plain_item, shelf, other_shelf):
    catalog.receive(plain_item, shelf, 5)
    transfer(warehouse, plain_item, shelf, other_shelf, 2)
    ok(
        warehouse.post(
            "/adjustments",
            {
                "reason": "lost",
                "lines": [
                    {"item_id": plain_item["id"], "location_id": shelf["id"], "quantity_delta": -1}
                ],
            },
        ),
        201,
    )
    for kind, quantity in (("receipt", 5), ("transfer", 2), ("adjustment", 1)):
        rows = ok(warehouse.get("/movements", type=kind))["items"]
        assert [(row["type"], row["quantity"]) for row in rows] == [(kind, quantity)]


def test_movements_filter_by_location_in_either_direction(
    warehouse, catalog, plain_item, shelf, other_shelf
):
    third = catalog.location()
    catalog.receive(plain_item, shelf, 5)
    catalog.receive(plain_item, third, 1)
    transfer(warehouse, plain_item, shelf, other_shelf, 2)
    transfer(warehouse, plain_item, other_shelf, third, 1)
    rows = ok(warehouse.get("/movements", location_id=other_shelf["id"]))["items"]
    assert [(row["from"]["location_id"], row["to"]["location_id"]) for row in rows] == [
        (shelf["id"], other_shelf["id"]),
        (other_shelf["id"], third["id"]),
    ]


def test_movements_filter_by_document(warehouse, catalog, plain_item, shelf):
    catalog.receive(plain_item, shelf, 5)
    second = catalog.receive(plain_item, shelf, 7)
    rows = ok(warehouse.get("/movements", document_id=second["id"]))["items"]
    assert [(row["document_id"], row["quantity"]) for row in rows] == [(second["id"], 7)]


@pytest.fixture
def dated_receipts(catalog, plain_item, shelf):
    """Receipts of 1, 2, 3 and 4 units at known instants around three UTC days."""
    for quantity, occurred_at in (
        (1, "2025-06-01T00:00:00+00:00"),  # the first instant of 1 June
        (2, "2025-06-02T23:59:59.999999+00:00"),  # the last instant of 2 June
        (3, "2025-06-02T22:00:00-05:00"),  # 3 June 03:00 UTC
        (4, "2025-05-31T23:59:59+00:00"),  # the day before
    ):
        catalog.receive(plain_item, shelf, quantity, occurred_at=occurred_at)
    return plain_item


@pytest.mark.parametrize(
    ("window", "quantities"),
    [
        ({"from": "2025-06-01", "to": "2025-06-02"}, [1, 2]),
        ({"from": "2025-06-02", "to": "2025-06-02"}, [2]),
        ({"from": "2025-06-03"}, [3]),
        ({"to": "2025-05-31"}, [4]),
        ({"from": "2025-05-31", "to": "2025-06-03"}, [1, 2, 3, 4]),
    ],
)
def test_movements_filter_by_occurred_date_inclusive_of_both_ends(
    warehouse, dated_receipts, window, quantities
):
    rows = all_pages(warehouse, "/movements", item_id=dated_receipts["id"], **window)
    assert sorted(row["quantity"] for row in rows) == quantities


def test_a_movement_window_that_ends_before_it_starts_is_refused(warehouse):
    body = problem(warehouse.get("/movements", **{"from": "2025-06-02", "to": "2025-06-01"}), 422)
    assert list(body["errors"]) == ["to"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("limit", 501), ("limit", 0), ("type", "theft"), ("from", "yesterday"), ("document_id", -1)],
)
def test_bad_movement_filters_are_refused(warehouse, name, value):
    body = problem(warehouse.get("/movements", **{name: value}), 422)
    assert list(body["errors"]) == [name]


def test_a_limit_of_500_is_allowed(warehouse):
    assert ok(warehouse.get("/movements", limit=500)) == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "filters",
    [
        {"item_id": 999_999},
        {"lot": "NO-SUCH"},
        {"location_id": 999_999},
        {"document_id": 999_999},
        {"site": "NOWHERE"},
        {"from": "2099-01-01"},
    ],
)
def test_movement_filters_naming_nothing_return_an_empty_list(
    warehouse, catalog, lot_item, shelf, filters
):
    catalog.receive(lot_item, shelf, 5)
    assert ok(warehouse.get("/movements", **filters)) == {"items": [], "next_cursor": None}


def test_movement_paging_visits_every_row_exactly_once(warehouse, catalog, plain_item, shelf):
    for quantity in range(1, 8):
        catalog.receive(plain_item, shelf, quantity)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"item_id": plain_item["id"], "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = ok(warehouse.get("/movements", **params))
        seen.extend(row["quantity"] for row in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [1, 2, 3, 4, 5, 6, 7]


# --- who may read ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.FINANCE, Role.COORDINATOR, Role.ADMIN, Role.WAREHOUSE])
def test_stock_readers_see_stock_and_movements(as_role, catalog, plain_item, shelf, role):
    catalog.receive(plain_item, shelf, 5)
    reader = as_role(role)
    stock = ok(reader.get("/stock", item_id=plain_item["id"]))["items"]
    moves = ok(reader.get("/movements", item_id=plain_item["id"]))["items"]
    assert [(row["on_hand"], row["available"]) for row in stock] == [(5, 5)]
    assert [row["quantity"] for row in moves] == [5]


@pytest.mark.parametrize("path", ["/stock", "/movements"])
def test_a_driver_may_not_read_stock_or_movements(as_role, path):
    body = problem(as_role(Role.DRIVER).get(path), 403)
    assert body["type"].endswith("/forbidden")


@pytest.mark.parametrize("path", ["/stock", "/movements"])
def test_reading_stock_without_a_token_is_401(app, path):
    problem(app.test_client().get(f"/api/v1{path}"), 401)


@pytest.mark.parametrize(
    "window",
    [{"to": "9999-12-31"}, {"from": "0001-01-01"}, {"from": "0001-01-01", "to": "9999-12-31"}],
)
def test_movement_windows_at_the_ends_of_the_calendar_include_everything(
    warehouse, dated_receipts, window
):
    rows = all_pages(warehouse, "/movements", item_id=dated_receipts["id"], **window)
    assert sorted(row["quantity"] for row in rows) == [1, 2, 3, 4]
