"""Catalog items: create, read, edit with If-Match, and list with filters and cursors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import Api, Catalog, ok, problem, unique

EAN_13 = "4006381333931"
EAN_13_AS_GTIN_14 = "04006381333931"


def item_body(**fields: Any) -> dict[str, Any]:
    return {
        "sku": unique("SKU"),
        "name": "Saline flush 10 mL",
        "category": "flush",
        "unit": "each",
        "tracking": "lot",
        **fields,
    }


def test_creating_an_item_answers_201_with_the_item_and_its_etag(warehouse: Api):
    body = item_body(reorder_point=40, reorder_quantity=200)
    response = warehouse.post("/items", body)
    item = ok(response, 201)
    assert isinstance(item["id"], int)
    assert {k: item[k] for k in body} == body
    assert item["gtin"] is None
    assert item["daily_rate"] is None
    assert item["is_equipment"] is False
    assert item["active"] is True
    assert response.headers["ETag"] == f'"item-{item["id"]}-v1"'
    fetched = warehouse.get(f"/items/{item['id']}")
    assert ok(fetched) == item
    assert fetched.headers["ETag"] == response.headers["ETag"]


def test_reorder_fields_default_to_zero(warehouse: Api):
    item = ok(warehouse.post("/items", item_body()), 201)
    assert (item["reorder_point"], item["reorder_quantity"]) == (0, 0)


def test_a_13_digit_gtin_is_stored_as_14_digits(warehouse: Api):
    item = ok(warehouse.post("/items", item_body(gtin=EAN_13)), 201)
    assert item["gtin"] == EAN_13_AS_GTIN_14
    found = ok(warehouse.get("/items", gtin=EAN_13))["items"]
    assert [i["id"] for i in found] == [item["id"]]


def test_a_gtin_with_a_bad_check_digit_is_refused_on_the_gtin_field(warehouse: Api):
    body = problem(warehouse.post("/items", item_body(gtin="4006381333932")), 422)
    assert list(body["errors"]) == ["gtin"]
    assert "check digit" in body["errors"]["gtin"][0]
    assert ok(warehouse.get("/items", sku="4006381333932"))["items"] == []


@pytest.mark.parametrize("gtin", ["12345", "400638133393a", "123456789012345"])
def test_a_gtin_of_the_wrong_shape_is_refused_on_the_gtin_field(warehouse: Api, gtin):
    body = problem(warehouse.post("/items", item_body(gtin=gtin)), 422)
    assert "gtin" in body["errors"]


def test_a_duplicate_sku_is_a_conflict(warehouse: Api):
    first = ok(warehouse.post("/items", item_body()), 201)
    body = problem(warehouse.post("/items", item_body(sku=first["sku"], name="Other")), 409)
    assert first["sku"] in body["detail"]
    assert len(ok(warehouse.get("/items", sku=first["sku"]))["items"]) == 1


def test_a_duplicate_gtin_is_a_conflict_even_when_written_with_fewer_digits(warehouse: Api):
    ok(warehouse.post("/items", item_body(gtin=EAN_13_AS_GTIN_14)), 201)
    body = problem(warehouse.post("/items", item_body(gtin=EAN_13)), 409)
    assert EAN_13_AS_GTIN_14 in body["detail"]
    assert len(ok(warehouse.get("/items", gtin=EAN_13))["items"]) == 1


@pytest.mark.parametrize("category", ["pump", "pole"])
@pytest.mark.parametrize("tracking", ["none", "lot"])
def test_equipment_must_be_tracked_by_serial(warehouse: Api, category, tracking):
    body = item_body(category=category, tracking=tracking, daily_rate="4.5000")
    errors = problem(warehouse.post("/items", body), 422)["errors"]
    assert list(errors) == ["tracking"]


def test_equipment_tracked_by_serial_carries_its_daily_rate(warehouse: Api):
    item = ok(
        warehouse.post("/items", item_body(category="pump", tracking="serial", daily_rate="4.5")),
        201,
    )
    assert item["daily_rate"] == "4.5000"
    assert item["is_equipment"] is True


def test_only_equipment_has_a_daily_rate(warehouse: Api):
    body = item_body(category="filter", tracking="lot", daily_rate="1.0000")
    errors = problem(warehouse.post("/items", body), 422)["errors"]
    assert list(errors) == ["daily_rate"]


def test_missing_required_fields_are_each_named(warehouse: Api):
    errors = problem(warehouse.post("/items", {}), 422)["errors"]
    assert set(errors) == {"sku", "name", "category", "unit", "tracking"}
    assert all(messages for messages in errors.values())


def test_wrong_typed_fields_are_each_named(warehouse: Api):
    body = item_body(
        sku=12345,
        name=["not", "text"],
        category="spaceship",
        reorder_point="10",
        reorder_quantity=True,
        daily_rate=1.5,
        gtin=4006381333931,
    )
    errors = problem(warehouse.post("/items", body), 422)["errors"]
    assert set(errors) == {
        "sku",
        "name",
        "category",
        "reorder_point",
        "reorder_quantity",
        "daily_rate",
        "gtin",
    }


def test_an_unknown_field_is_refused(warehouse: Api):
    errors = problem(warehouse.post("/items", item_body(colour="blue")), 422)["errors"]
    assert list(errors) == ["colour"]


def test_an_unknown_item_is_404_to_read(warehouse: Api):
    problem(warehouse.get("/items/999999"), 404)


def test_an_unknown_item_is_404_to_edit(warehouse: Api):
    problem(warehouse.patch("/items/999999", {"name": "x"}), 404)


def test_an_edit_with_the_current_etag_applies_and_returns_a_new_etag(warehouse: Api):
    created = warehouse.post("/items", item_body())
    item = ok(created, 201)
    response = warehouse.patch(
        f"/items/{item['id']}",
        {"name": "Heparin flush 5 mL", "reorder_point": 12},
        headers={"If-Match": created.headers["ETag"]},
    )
    edited = ok(response)
    assert edited["name"] == "Heparin flush 5 mL"
    assert edited["reorder_point"] == 12
    assert edited["sku"] == item["sku"]
    assert response.headers["ETag"] == f'"item-{item["id"]}-v2"'
    assert response.headers["ETag"] != created.headers["ETag"]
    assert ok(warehouse.get(f"/items/{item['id']}"))["name"] == "Heparin flush 5 mL"


def test_an_edit_without_if_match_still_applies(warehouse: Api):
    item = ok(warehouse.post("/items", item_body()), 201)
    assert ok(warehouse.patch(f"/items/{item['id']}", {"unit": "box"}))["unit"] == "box"


def test_an_edit_with_a_stale_etag_is_412_and_leaves_the_item_unchanged(warehouse: Api):
    created = warehouse.post("/items", item_body())
    item = ok(created, 201)
    stale = created.headers["ETag"]
    ok(warehouse.patch(f"/items/{item['id']}", {"name": "First edit"}, {"If-Match": stale}))

    problem(
        warehouse.patch(f"/items/{item['id']}", {"name": "Lost edit"}, {"If-Match": stale}), 412
    )
    after = warehouse.get(f"/items/{item['id']}")
    assert ok(after)["name"] == "First edit"
    assert after.headers["ETag"] == f'"item-{item["id"]}-v2"'


def test_an_edit_can_normalize_and_set_a_gtin(warehouse: Api):
    item = ok(warehouse.post("/items", item_body()), 201)
    edited = ok(warehouse.patch(f"/items/{item['id']}", {"gtin": EAN_13}))
    assert edited["gtin"] == EAN_13_AS_GTIN_14


def test_an_edit_cannot_take_another_items_gtin(warehouse: Api, catalog: Catalog):
    other = catalog.item()
    item = ok(warehouse.post("/items", item_body()), 201)
    problem(warehouse.patch(f"/items/{item['id']}", {"gtin": other["gtin"]}), 409)
    assert ok(warehouse.get(f"/items/{item['id']}"))["gtin"] is None


def test_an_edit_cannot_give_a_daily_rate_to_a_supply(warehouse: Api):
    item = ok(warehouse.post("/items", item_body()), 201)
    errors = problem(warehouse.patch(f"/items/{item['id']}", {"daily_rate": "2.0000"}), 422)
    assert list(errors["errors"]) == ["daily_rate"]


def test_tracking_can_change_before_any_stock_has_moved(warehouse: Api):
    item = ok(warehouse.post("/items", item_body(tracking="lot")), 201)
    assert ok(warehouse.patch(f"/items/{item['id']}", {"tracking": "none"}))["tracking"] == "none"


def test_tracking_cannot_change_once_the_item_has_been_received(warehouse: Api, catalog: Catalog):
    item = catalog.item(tracking="lot")
    catalog.receive(item, catalog.location(), 5)
    body = problem(warehouse.patch(f"/items/{item['id']}", {"tracking": "none"}), 409)
    assert "tracking" in body["detail"]
    assert ok(warehouse.get(f"/items/{item['id']}"))["tracking"] == "lot"


def test_other_fields_can_still_change_after_a_receipt(warehouse: Api, catalog: Catalog):
    item = catalog.item(tracking="lot")
    catalog.receive(item, catalog.location(), 5)
    edited = ok(warehouse.patch(f"/items/{item['id']}", {"name": "Renamed", "tracking": "lot"}))
    assert edited["name"] == "Renamed"


def test_the_list_filters_by_category_tracking_and_sku(warehouse: Api, catalog: Catalog):
    flush = catalog.item(category="flush", tracking="lot")
    untracked_flush = catalog.item(category="flush", tracking="none")
    dressing = catalog.item(category="dressing", tracking="lot")
    pump = catalog.item(category="pump", tracking="serial")
    mine = {flush["id"], untracked_flush["id"], dressing["id"], pump["id"]}

    def ids(**params: Any) -> set[int]:
        return {i["id"] for i in ok(warehouse.get("/items", **params))["items"]} & mine

    assert ids(category="flush") == {flush["id"], untracked_flush["id"]}
    assert ids(tracking="serial") == {pump["id"]}
    assert ids(category="flush", tracking="lot") == {flush["id"]}
    assert ids(sku=dressing["sku"]) == {dressing["id"]}
    assert ok(warehouse.get("/items", sku="NO-SUCH-SKU"))["items"] == []


def test_an_unknown_filter_value_is_refused(warehouse: Api):
    errors = problem(warehouse.get("/items", category="spaceship"), 422)["errors"]
    assert list(errors) == ["category"]


def test_pages_of_two_walk_every_item_once(warehouse: Api, catalog: Catalog):
    created = [catalog.item(category="prep")["id"] for _ in range(5)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, "category": "prep"}
        if cursor:
            params["cursor"] = cursor
        page = ok(warehouse.get("/items", **params))
        assert len(page["items"]) <= 2
        seen.extend(i["id"] for i in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "paging does not terminate"
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))
    assert set(created) <= set(seen)
    assert pages == (len(seen) + 1) // 2


def test_the_last_page_has_no_next_cursor(warehouse: Api, catalog: Catalog):
    item = catalog.item()
    page = ok(warehouse.get("/items", sku=item["sku"], limit=1))
    assert [i["id"] for i in page["items"]] == [item["id"]]
    assert page["next_cursor"] is None


@pytest.mark.parametrize("limit", [0, 501, -1, "many"])
def test_a_limit_outside_1_to_500_is_refused(warehouse: Api, limit):
    errors = problem(warehouse.get("/items", limit=limit), 422)["errors"]
    assert list(errors) == ["limit"]


def test_limit_500_is_allowed(warehouse: Api):
    assert "items" in ok(warehouse.get("/items", limit=500))


@pytest.mark.parametrize("cursor", ["garbage", "eyJhZnRlciI6ICJ4In0", "!!!"])
def test_a_cursor_the_service_did_not_issue_is_refused(warehouse: Api, cursor):
    errors = problem(warehouse.get("/items", cursor=cursor), 422)["errors"]
    assert list(errors) == ["cursor"]
