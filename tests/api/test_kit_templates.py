"""Kit templates: supplies per infusion day and equipment per course, checked against the
catalog (known items, supplies under lines, pumps and poles under equipment, each item once)."""

from __future__ import annotations

from typing import Any

import pytest

from inventory.care import service
from inventory.care.schemas import KitTemplateIn
from inventory.errors import NotFound
from inventory.users.models import Role
from tests.api.care_builders import make_template, template_body
from tests.builders import Api, Catalog, ok, problem, unique

UNKNOWN_ITEM = 2_000_000_000


@pytest.fixture
def coordinator(as_role) -> Api:  # type: ignore[no-untyped-def]
    return as_role(Role.COORDINATOR)


@pytest.fixture
def supplies(catalog: Catalog) -> list[dict[str, Any]]:
    return [
        catalog.item(category="administration_set"),
        catalog.item(category="flush"),
        catalog.item(category="prep", tracking="none"),
    ]


@pytest.fixture
def pump(catalog: Catalog) -> dict[str, Any]:
    return catalog.item(category="pump", tracking="serial")


@pytest.fixture
def pole(catalog: Catalog) -> dict[str, Any]:
    return catalog.item(category="pole", tracking="serial")


def test_creating_a_template_answers_201_with_each_line_and_its_sku(
    coordinator: Api, supplies, pump, pole
):
    set_, flush, prep = supplies
    body = template_body(
        lines=[(set_["id"], 1), (flush["id"], 4), (prep["id"], 4)],
        equipment=[(pump["id"], 1), (pole["id"], 1)],
        name="Enzyme replacement, port",
    )
    template = ok(coordinator.post("/kit-templates", body), 201)
    assert isinstance(template["id"], int)
    assert (template["name"], template["hcpcs"]) == ("Enzyme replacement, port", "S9357")
    assert template["lines"] == [
        {"item_id": set_["id"], "sku": set_["sku"], "quantity_per_day": 1},
        {"item_id": flush["id"], "sku": flush["sku"], "quantity_per_day": 4},
        {"item_id": prep["id"], "sku": prep["sku"], "quantity_per_day": 4},
    ]
    assert template["equipment"] == [
        {"item_id": pump["id"], "sku": pump["sku"], "quantity": 1},
        {"item_id": pole["id"], "sku": pole["sku"], "quantity": 1},
    ]
    assert ok(coordinator.get(f"/kit-templates/{template['id']}")) == template


def test_equipment_is_optional(coordinator: Api, supplies):
    body = template_body(lines=[(supplies[0]["id"], 1)])
    del body["equipment"]
    assert ok(coordinator.post("/kit-templates", body), 201)["equipment"] == []


def test_the_builder_makes_a_template_from_item_ids(coordinator: Api, supplies, pump):
    template = make_template(
        coordinator, lines=[(supplies[1]["id"], 2)], equipment=[(pump["id"], 1)]
    )
    assert [(line["item_id"], line["quantity_per_day"]) for line in template["lines"]] == [
        (supplies[1]["id"], 2)
    ]
    assert [(e["item_id"], e["quantity"]) for e in template["equipment"]] == [(pump["id"], 1)]


def test_a_duplicate_name_is_a_conflict(coordinator: Api, supplies):
    first = make_template(coordinator, lines=[(supplies[0]["id"], 1)])
    body = template_body(lines=[(supplies[1]["id"], 1)], name=first["name"])
    result = problem(coordinator.post("/kit-templates", body), 409)
    assert f"kit template {first['id']}" in result["detail"]
    assert len(ok(coordinator.get("/kit-templates", name=first["name"]))["items"]) == 1


def test_an_unknown_item_on_a_line_is_refused_on_that_line(coordinator: Api, supplies):
    body = template_body(lines=[(supplies[0]["id"], 1), (UNKNOWN_ITEM, 2)])
    errors = problem(coordinator.post("/kit-templates", body), 422)["errors"]
    assert errors == {"lines.1.item_id": [f"No item {UNKNOWN_ITEM}."]}
    assert ok(coordinator.get("/kit-templates", name=body["name"]))["items"] == []


def test_an_unknown_item_in_the_equipment_is_refused_on_that_entry(coordinator: Api, supplies):
    body = template_body(lines=[(supplies[0]["id"], 1)], equipment=[(UNKNOWN_ITEM, 1)])
    errors = problem(coordinator.post("/kit-templates", body), 422)["errors"]
    assert list(errors) == ["equipment.0.item_id"]


@pytest.mark.parametrize("equipment", ["pump", "pole"])
def test_a_supply_line_cannot_name_a_pump_or_pole(coordinator: Api, supplies, equipment, request):
    item = request.getfixturevalue(equipment)
    body = template_body(lines=[(supplies[0]["id"], 1), (item["id"], 1)])
    errors = problem(coordinator.post("/kit-templates", body), 422)["errors"]
    assert list(errors) == ["lines.1.item_id"]
    assert "equipment" in errors["lines.1.item_id"][0]


def test_an_equipment_entry_cannot_name_a_supply(coordinator: Api, supplies, pump):
    body = template_body(
        lines=[(supplies[0]["id"], 1)], equipment=[(pump["id"], 1), (supplies[1]["id"], 1)]
    )
    errors = problem(coordinator.post("/kit-templates", body), 422)["errors"]
    assert list(errors) == ["equipment.1.item_id"]


def test_the_same_supply_twice_is_refused_on_the_second_line(coordinator: Api, supplies):
    flush = supplies[1]
    body = template_body(lines=[(flush["id"], 1), (supplies[0]["id"], 1), (flush["id"], 3)])
    errors = problem(coordinator.post("/kit-templates", body), 422)["errors"]
    assert list(errors) == ["lines.2.item_id"]
    assert "lines.0" in errors["lines.2.item_id"][0]


def test_the_same_equipment_twice_is_refused(coordinator: Api, supplies, pump):
    body = template_body(lines=[(supplies[0]["id"], 1)], equipment=[(pump["id"], 1)] * 2)
    errors = problem(coordinator.post("/kit-templates", body), 422)["errors"]
    assert list(errors) == ["equipment.1.item_id"]


def test_every_bad_line_is_reported_at_once(coordinator: Api, supplies, pump):
    body = template_body(
        lines=[(UNKNOWN_ITEM, 1), (pump["id"], 1)], equipment=[(supplies[0]["id"], 1)]
    )
    errors = problem(coordinator.post("/kit-templates", body), 422)["errors"]
    assert set(errors) == {"lines.0.item_id", "lines.1.item_id", "equipment.0.item_id"}


@pytest.mark.parametrize("quantity", [0, 1001, -1, "4", 1.5, True, None])
def test_a_quantity_per_day_outside_1_to_1000_is_refused(coordinator: Api, supplies, quantity):
    body = template_body(lines=[(supplies[0]["id"], quantity)])
    errors = problem(coordinator.post("/kit-templates", body), 422)["errors"]
    assert list(errors) == ["lines.0.quantity_per_day"]


@pytest.mark.parametrize("quantity", [1, 1000])
def test_a_quantity_per_day_of_1_to_1000_is_accepted(coordinator: Api, supplies, quantity):
    template = make_template(coordinator, lines=[(supplies[0]["id"], quantity)])
    assert template["lines"][0]["quantity_per_day"] == quantity


@pytest.mark.parametrize("quantity", [0, 11, "1", 1.0])
def test_an_equipment_quantity_outside_1_to_10_is_refused(
    coordinator: Api, supplies, pump, quantity
):
    body = template_body(lines=[(supplies[0]["id"], 1)], equipment=[(pump["id"], quantity)])
    errors = problem(coordinator.post("/kit-templates", body), 422)["errors"]
    assert list(errors) == ["equipment.0.quantity"]


def test_a_template_needs_at_least_one_line(coordinator: Api):
    errors = problem(coordinator.post("/kit-templates", template_body(lines=[])), 422)["errors"]
    assert list(errors) == ["lines"]


def test_a_template_holds_at_most_100_lines_and_10_equipment_entries(coordinator: Api, pump):
    too_many_lines = template_body(lines=[(i, 1) for i in range(1, 102)])
    errors = problem(coordinator.post("/kit-templates", too_many_lines), 422)["errors"]
    assert list(errors) == ["lines"]
    too_much_equipment = template_body(lines=[(1, 1)], equipment=[(i, 1) for i in range(1, 12)])
    errors = problem(coordinator.post("/kit-templates", too_much_equipment), 422)["errors"]
    assert list(errors) == ["equipment"]


@pytest.mark.parametrize("hcpcs", ["s9357", "S935", "9357S", "", None, 9357])
def test_an_hcpcs_that_is_not_a_letter_and_four_digits_is_refused(
    coordinator: Api, supplies, hcpcs
):
    body = template_body(lines=[(supplies[0]["id"], 1)], hcpcs=hcpcs)
    errors = problem(coordinator.post("/kit-templates", body), 422)["errors"]
    assert list(errors) == ["hcpcs"]


def test_missing_fields_and_unknown_fields_are_each_named(coordinator: Api):
    body = {"lines": [{"item_id": 1, "qty": 2}], "colour": "blue"}
    errors = problem(coordinator.post("/kit-templates", body), 422)["errors"]
    assert set(errors) == {"name", "hcpcs", "colour", "lines.0.qty", "lines.0.quantity_per_day"}


def test_an_unknown_template_is_404(coordinator: Api):
    body = problem(coordinator.get("/kit-templates/999999"), 404)
    assert body["detail"] == "No kit template 999999."


def test_replaying_a_creation_with_its_idempotency_key_creates_one_template(
    coordinator: Api, supplies
):
    body = template_body(lines=[(supplies[0]["id"], 1)])
    headers = {"Idempotency-Key": unique("template-key")}
    first = coordinator.post("/kit-templates", body, headers=headers)
    again = coordinator.post("/kit-templates", body, headers=headers)
    assert ok(again, 201) == ok(first, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(ok(coordinator.get("/kit-templates", name=body["name"]))["items"]) == 1


# --- lists -----------------------------------------------------------------------------------


def test_the_list_filters_by_hcpcs_and_name(coordinator: Api, supplies):
    ert = make_template(coordinator, lines=[(supplies[0]["id"], 1)], hcpcs="S9357")
    abx = make_template(coordinator, lines=[(supplies[1]["id"], 1)], hcpcs="S9500")
    listed = ok(coordinator.get("/kit-templates", hcpcs="S9500", limit=500))["items"]
    assert abx in listed
    assert ert["id"] not in [t["id"] for t in listed]
    assert ok(coordinator.get("/kit-templates", name=ert["name"]))["items"] == [ert]


def test_pages_of_two_walk_every_template_once(coordinator: Api, supplies):
    hcpcs = "S9338"
    created = [
        make_template(coordinator, lines=[(supplies[0]["id"], 1)], hcpcs=hcpcs)["id"]
        for _ in range(5)
    ]
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2, "hcpcs": hcpcs}
        if cursor:
            params["cursor"] = cursor
        page = ok(coordinator.get("/kit-templates", **params))
        assert len(page["items"]) <= 2
        seen.extend(t["id"] for t in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert cursor is None
    assert seen == created


@pytest.mark.parametrize("params", [{"hcpcs": "nope"}, {"limit": 0}, {"item_id": 1}])
def test_bad_list_parameters_are_refused(coordinator: Api, params):
    errors = problem(coordinator.get("/kit-templates", **params), 422)["errors"]
    assert list(errors) == list(params)


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.WAREHOUSE, Role.FINANCE])
def test_warehouse_and_finance_can_read_templates_but_not_create_them(
    as_role, coordinator, supplies, role
):
    template = make_template(coordinator, lines=[(supplies[0]["id"], 1)])
    reader: Api = as_role(role)
    assert ok(reader.get(f"/kit-templates/{template['id']}")) == template
    assert ok(reader.get("/kit-templates", name=template["name"]))["items"] == [template]
    problem(reader.post("/kit-templates", template_body(lines=[(supplies[0]["id"], 1)])), 403)


def test_a_driver_can_neither_read_nor_create_templates(as_role, coordinator, supplies):
    template = make_template(coordinator, lines=[(supplies[0]["id"], 1)])
    driver: Api = as_role(Role.DRIVER)
    problem(driver.get("/kit-templates"), 403)
    problem(driver.get(f"/kit-templates/{template['id']}"), 403)
    problem(driver.post("/kit-templates", template_body(lines=[(supplies[0]["id"], 1)])), 403)


def test_an_admin_can_create_templates(admin: Api, supplies):
    assert make_template(admin, lines=[(supplies[0]["id"], 2)])["lines"][0]["quantity_per_day"] == 2


# --- service functions other features call -------------------------------------------------


def test_the_service_creates_and_finds_a_template_from_the_dict_its_schema_loads(
    database, supplies, pump
):
    body = template_body(lines=[(supplies[0]["id"], 3)], equipment=[(pump["id"], 1)])
    fields = KitTemplateIn().load(body)
    with database.transaction() as session:
        template = service.create_template(session, fields)
        assert service.get_template(session, template.id) is template
        assert [(line.item_id, line.quantity_per_day) for line in template.lines] == [
            (supplies[0]["id"], 3)
        ]
        assert [(e.item_id, e.quantity) for e in template.equipment] == [(pump["id"], 1)]
        with pytest.raises(NotFound, match=r"^No kit template 2147483647\.$"):
            service.get_template(session, 2_147_483_647)
