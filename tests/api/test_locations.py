"""Locations: where stock is kept, staged, quarantined, carried, cleaned and repaired."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import Api, Catalog, ok, problem, unique

KINDS = ["storage", "staging", "quarantine", "vehicle", "cleaning", "repair"]


def location_body(**fields: Any) -> dict[str, Any]:
    return {
        "code": unique("BIN"),
        "name": "Aisle 3, shelf B",
        "kind": "storage",
        "site": "NORTH",
        **fields,
    }


@pytest.mark.parametrize("kind", KINDS)
def test_a_location_of_each_kind_can_be_created(warehouse: Api, kind):
    body = {"code": unique(kind.upper()), "name": f"{kind} area", "kind": kind, "site": "NORTH"}
    location = ok(warehouse.post("/locations", body), 201)
    assert isinstance(location["id"], int)
    assert {k: location[k] for k in body} == body
    assert location["active"] is True


@pytest.mark.parametrize("kind", ["patient", "supplier", "disposal", "shelf", ""])
def test_a_kind_that_is_not_a_location_kind_is_refused(warehouse: Api, kind):
    body = {**location_body(), "kind": kind}
    errors = problem(warehouse.post("/locations", body), 422)["errors"]
    assert list(errors) == ["kind"]
    assert ok(warehouse.get("/locations", site="NORTH"))["items"] == []


def test_a_duplicate_code_is_a_conflict(warehouse: Api):
    body = location_body()
    ok(warehouse.post("/locations", body), 201)
    detail = problem(warehouse.post("/locations", {**body, "name": "Another"}), 409)["detail"]
    assert body["code"] in detail
    assert len(ok(warehouse.get("/locations", site="NORTH"))["items"]) == 1


def test_missing_fields_are_each_named(warehouse: Api):
    errors = problem(warehouse.post("/locations", {}), 422)["errors"]
    assert set(errors) == {"code", "name", "kind", "site"}


@pytest.mark.parametrize("code", ["has space", "-leading-dash", "x" * 33, "semi;colon"])
def test_a_code_people_cannot_type_or_scan_is_refused(warehouse: Api, code):
    errors = problem(warehouse.post("/locations", {**location_body(), "code": code}), 422)
    assert list(errors["errors"]) == ["code"]


def test_an_unknown_field_is_refused(warehouse: Api):
    errors = problem(warehouse.post("/locations", {**location_body(), "zone": "A"}), 422)
    assert list(errors["errors"]) == ["zone"]


def test_the_list_filters_by_kind_and_by_site(catalog: Catalog, warehouse: Api):
    north_shelf = catalog.location("storage", site="NORTH")
    north_van = catalog.location("vehicle", site="NORTH")
    south_shelf = catalog.location("storage", site="SOUTH")

    def ids(**params: Any) -> list[int]:
        return [row["id"] for row in ok(warehouse.get("/locations", **params))["items"]]

    assert ids(site="NORTH") == [north_shelf["id"], north_van["id"]]
    assert ids(site="SOUTH") == [south_shelf["id"]]
    assert set(ids(kind="storage")) >= {north_shelf["id"], south_shelf["id"]}
    assert north_van["id"] not in ids(kind="storage")
    assert ids(kind="storage", site="NORTH") == [north_shelf["id"]]
    assert ids(kind="vehicle", site="SOUTH") == []


def test_an_unknown_kind_filter_is_refused(warehouse: Api):
    errors = problem(warehouse.get("/locations", kind="patient"), 422)["errors"]
    assert list(errors) == ["kind"]


def test_pages_walk_every_location_once(catalog: Catalog, warehouse: Api):
    created = [catalog.location("staging", site="PAGED")["id"] for _ in range(5)]
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2, "site": "PAGED"}
        if cursor:
            params["cursor"] = cursor
        page = ok(warehouse.get("/locations", **params))
        seen.extend(row["id"] for row in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert cursor is None, "paging does not terminate"
    assert seen == created


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"cursor": "not-a-cursor"}])
def test_bad_paging_parameters_are_refused(warehouse: Api, params):
    errors = problem(warehouse.get("/locations", **params), 422)["errors"]
    assert list(errors) == list(params)
