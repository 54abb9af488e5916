"""Payers: the fee schedule (rates per HCPCS code from a date on), modifier multipliers, the
rate in force on a day, If-Match on edits, paging and who may read or write them."""

from __future__ import annotations

from typing import Any

import pytest

from inventory.care import service
from inventory.care.schemas import PayerIn
from inventory.errors import NotFound
from inventory.users.models import Role
from tests.api.care_builders import make_payer, payer_body
from tests.builders import Api, ok, problem, unique


@pytest.fixture
def coordinator(as_role) -> Api:  # type: ignore[no-untyped-def]
    return as_role(Role.COORDINATOR)


def rate(
    hcpcs: str = "S9357",
    amount: str = "212.5000",
    counting: str = "dose_day",
    effective_from: str = "2026-01-01",
) -> dict[str, Any]:
    return {"hcpcs": hcpcs, "rate": amount, "counting": counting, "effective_from": effective_from}


# --- create and read -------------------------------------------------------------------------


def test_creating_a_payer_answers_201_with_its_sorted_rates_and_an_etag(coordinator: Api):
    body = payer_body(
        rates=[
            rate("S9357", "250", "dose_day", "2027-01-01"),
            rate("S9338", "99.95", "calendar_day", "2026-01-01"),
            rate("S9357", "212.5", "dose_day", "2026-01-01"),
        ]
    )
    response = coordinator.post("/payers", body)
    payer = ok(response, 201)
    assert isinstance(payer["id"], int)
    assert payer["name"] == body["name"]
    assert payer["rates"] == [
        rate("S9338", "99.9500", "calendar_day", "2026-01-01"),
        rate("S9357", "212.5000", "dose_day", "2026-01-01"),
        rate("S9357", "250.0000", "dose_day", "2027-01-01"),
    ]
    assert response.headers["ETag"] == f'"payer-{payer["id"]}-v1"'
    fetched = coordinator.get(f"/payers/{payer['id']}")
    assert ok(fetched) == payer
    assert fetched.headers["ETag"] == response.headers["ETag"]


def test_modifier_multipliers_default_to_sh_half_and_sj_nothing(coordinator: Api):
    payer = make_payer(coordinator)
    assert payer["modifier_multipliers"] == {"SH": "0.5000", "SJ": "0.0000"}


def test_modifier_multipliers_given_are_kept_with_four_decimals(coordinator: Api):
    payer = make_payer(coordinator, modifier_multipliers={"SH": "0.75", "SJ": "0", "GY": "1"})
    assert payer["modifier_multipliers"] == {"GY": "1.0000", "SH": "0.7500", "SJ": "0.0000"}


def test_an_empty_modifier_map_means_no_modifier_reduces_the_rate(coordinator: Api):
    payer = make_payer(coordinator, modifier_multipliers={})
    assert payer["modifier_multipliers"] == {}


def test_a_payer_can_start_without_rates(coordinator: Api):
    body = payer_body()
    del body["rates"]
    assert ok(coordinator.post("/payers", body), 201)["rates"] == []


def test_one_code_can_have_rates_from_several_dates(coordinator: Api):
    payer = make_payer(
        coordinator, rates=[rate(effective_from="2026-01-01"), rate(effective_from="2026-07-01")]
    )
    assert [r["effective_from"] for r in payer["rates"]] == ["2026-01-01", "2026-07-01"]


def test_a_duplicate_name_is_a_conflict(coordinator: Api):
    first = make_payer(coordinator)
    body = problem(coordinator.post("/payers", payer_body(name=first["name"])), 409)
    assert f"payer {first['id']}" in body["detail"]
    assert len(ok(coordinator.get("/payers", name=first["name"]))["items"]) == 1


def test_two_rates_for_the_same_code_and_date_in_one_request_are_refused(coordinator: Api):
    body = payer_body(rates=[rate(amount="200"), rate("S9338"), rate(amount="210")])
    errors = problem(coordinator.post("/payers", body), 422)["errors"]
    assert list(errors) == ["rates.2.effective_from"]
    assert ok(coordinator.get("/payers", name=body["name"]))["items"] == []


def test_missing_required_fields_are_each_named(coordinator: Api):
    errors = problem(coordinator.post("/payers", {"rates": [{}]}), 422)["errors"]
    assert set(errors) == {
        "name",
        "rates.0.hcpcs",
        "rates.0.rate",
        "rates.0.counting",
        "rates.0.effective_from",
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hcpcs", "s9357"),
        ("hcpcs", "S935"),
        ("hcpcs", "S93577"),
        ("hcpcs", "99601"),
        ("hcpcs", 9357),
        ("rate", 212.5),
        ("rate", 212),
        ("rate", "-1.00"),
        ("rate", "1.23456"),
        ("rate", "123456789"),
        ("rate", "NaN"),
        ("counting", "per_visit"),
        ("counting", None),
        ("effective_from", "2026-13-01"),
        ("effective_from", "01/01/2026"),
    ],
)
def test_a_bad_rate_field_is_refused_with_its_path(coordinator: Api, field, value):
    body = payer_body(rates=[{**rate(), field: value}])
    errors = problem(coordinator.post("/payers", body), 422)["errors"]
    assert list(errors) == [f"rates.0.{field}"]


@pytest.mark.parametrize("multiplier", ["1.5", "2", "-0.1", "0.12345", "half", 0.5, 1, None])
def test_a_multiplier_outside_0_to_1_or_not_a_decimal_string_is_refused(
    coordinator: Api, multiplier
):
    body = payer_body(modifier_multipliers={"SH": multiplier})
    errors = problem(coordinator.post("/payers", body), 422)["errors"]
    assert list(errors) == ["modifier_multipliers.SH.value"]


@pytest.mark.parametrize("modifier", ["sh", "S", "SHX", "S-", ""])
def test_a_modifier_that_is_not_two_capitals_or_digits_is_refused(coordinator: Api, modifier):
    body = payer_body(modifier_multipliers={modifier: "0.5"})
    errors = problem(coordinator.post("/payers", body), 422)["errors"]
    assert list(errors) == [f"modifier_multipliers.{modifier}.key"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 121, "Bad\x00name", 42])
def test_a_name_that_is_empty_too_long_or_not_text_is_refused(coordinator: Api, name):
    errors = problem(coordinator.post("/payers", payer_body(name=name)), 422)["errors"]
    assert list(errors) == ["name"]


def test_unknown_fields_are_refused_at_the_top_and_in_a_rate(coordinator: Api):
    body = payer_body(colour="blue", rates=[{**rate(), "modifier": "SH"}])
    errors = problem(coordinator.post("/payers", body), 422)["errors"]
    assert set(errors) == {"colour", "rates.0.modifier"}


def test_a_body_that_is_not_json_is_refused(coordinator: Api):
    response = coordinator.client.post(
        "/api/v1/payers",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {coordinator.token}"},
    )
    assert response.status_code in (400, 422)
    assert response.content_type == "application/problem+json"


def test_an_unknown_payer_is_404_to_read_and_to_edit(coordinator: Api):
    problem(coordinator.get("/payers/999999"), 404)
    problem(coordinator.patch("/payers/999999", {"name": "x"}), 404)
    problem(coordinator.get("/payers/0"), 404)


def test_replaying_a_creation_with_its_idempotency_key_creates_one_payer(coordinator: Api):
    body = payer_body()
    headers = {"Idempotency-Key": unique("payer-key")}
    first = coordinator.post("/payers", body, headers=headers)
    again = coordinator.post("/payers", body, headers=headers)
    assert ok(again, 201) == ok(first, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(ok(coordinator.get("/payers", name=body["name"]))["items"]) == 1


# --- edit ------------------------------------------------------------------------------------


def test_an_edit_upserts_rates_by_code_and_date_and_deletes_none(coordinator: Api):
    created = coordinator.post(
        "/payers",
        payer_body(
            rates=[rate("S9357", "200", "dose_day", "2026-01-01"), rate("S9338", "80")],
        ),
    )
    payer = ok(created, 201)
    response = coordinator.patch(
        f"/payers/{payer['id']}",
        {
            "rates": [
                rate("S9357", "205", "calendar_day", "2026-01-01"),  # existing: updated
                rate("S9357", "220", "dose_day", "2026-07-01"),  # new: added
            ]
        },
        headers={"If-Match": created.headers["ETag"]},
    )
    edited = ok(response)
    assert edited["rates"] == [
        rate("S9338", "80.0000", "dose_day", "2026-01-01"),
        rate("S9357", "205.0000", "calendar_day", "2026-01-01"),
        rate("S9357", "220.0000", "dose_day", "2026-07-01"),
    ]
    assert edited["name"] == payer["name"]
    assert response.headers["ETag"] == f'"payer-{payer["id"]}-v2"'
    assert ok(coordinator.get(f"/payers/{payer['id']}")) == edited


def test_an_edit_replaces_the_whole_modifier_map(coordinator: Api):
    payer = make_payer(coordinator)
    edited = ok(coordinator.patch(f"/payers/{payer['id']}", {"modifier_multipliers": {"SH": "1"}}))
    assert edited["modifier_multipliers"] == {"SH": "1.0000"}
    assert edited["rates"] == payer["rates"]


def test_an_edit_can_rename_a_payer(coordinator: Api):
    payer = make_payer(coordinator)
    new_name = unique("Renamed payer")
    assert ok(coordinator.patch(f"/payers/{payer['id']}", {"name": new_name}))["name"] == new_name


def test_an_edit_cannot_take_another_payers_name(coordinator: Api):
    other = make_payer(coordinator)
    payer = make_payer(coordinator)
    problem(coordinator.patch(f"/payers/{payer['id']}", {"name": other["name"]}), 409)
    assert ok(coordinator.get(f"/payers/{payer['id']}"))["name"] == payer["name"]


def test_an_edit_with_a_stale_etag_is_412_and_changes_nothing(coordinator: Api):
    created = coordinator.post("/payers", payer_body())
    payer = ok(created, 201)
    stale = created.headers["ETag"]
    ok(
        coordinator.patch(
            f"/payers/{payer['id']}", {"rates": [rate(amount="1")]}, {"If-Match": stale}
        )
    )
    problem(
        coordinator.patch(
            f"/payers/{payer['id']}", {"rates": [rate(amount="2")]}, {"If-Match": stale}
        ),
        412,
    )
    after = coordinator.get(f"/payers/{payer['id']}")
    assert [r["rate"] for r in ok(after)["rates"]] == ["1.0000"]
    assert after.headers["ETag"] == f'"payer-{payer["id"]}-v2"'


def test_an_edit_that_changes_no_rate_keeps_the_etag(coordinator: Api):
    created = coordinator.post("/payers", payer_body())
    payer = ok(created, 201)
    response = coordinator.patch(f"/payers/{payer['id']}", {"rates": payer["rates"]})
    assert ok(response)["rates"] == payer["rates"]
    assert response.headers["ETag"] == created.headers["ETag"]


def test_an_edit_with_two_rates_for_the_same_code_and_date_is_refused(coordinator: Api):
    payer = make_payer(coordinator)
    body = {"rates": [rate(amount="1"), rate(amount="2")]}
    errors = problem(coordinator.patch(f"/payers/{payer['id']}", body), 422)["errors"]
    assert list(errors) == ["rates.1.effective_from"]
    assert ok(coordinator.get(f"/payers/{payer['id']}"))["rates"] == payer["rates"]


@pytest.mark.parametrize(
    "body",
    [
        {"rates": [{**rate(), "rate": 1.5}]},
        {"modifier_multipliers": {"SH": "3"}},
        {"name": ""},
        {"colour": "blue"},
    ],
)
def test_a_bad_edit_is_refused_and_changes_nothing(coordinator: Api, body):
    payer = make_payer(coordinator)
    problem(coordinator.patch(f"/payers/{payer['id']}", body), 422)
    assert ok(coordinator.get(f"/payers/{payer['id']}")) == payer


# --- rate in force ---------------------------------------------------------------------------


@pytest.fixture
def schedule(coordinator: Api) -> dict[str, Any]:
    return make_payer(
        coordinator,
        rates=[
            rate("S9357", "200", "dose_day", "2026-01-01"),
            rate("S9357", "210", "calendar_day", "2026-07-01"),
            rate("S9338", "90", "dose_day", "2025-01-01"),
        ],
    )


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2026-01-01", ("200.0000", "dose_day", "2026-01-01")),
        ("2026-06-30", ("200.0000", "dose_day", "2026-01-01")),
        ("2026-07-01", ("210.0000", "calendar_day", "2026-07-01")),
        ("2026-12-01", ("210.0000", "calendar_day", "2026-07-01")),
    ],
)
def test_the_rate_in_force_is_the_latest_effective_on_or_before_the_day(
    coordinator: Api, schedule, day, expected
):
    found = ok(coordinator.get(f"/payers/{schedule['id']}/rates/in-force", hcpcs="S9357", date=day))
    assert (found["rate"], found["counting"], found["effective_from"]) == expected
    assert found["hcpcs"] == "S9357"


def test_no_rate_in_force_before_the_first_effective_date_is_404(coordinator: Api, schedule):
    path = f"/payers/{schedule['id']}/rates/in-force"
    body = problem(coordinator.get(path, hcpcs="S9357", date="2025-12-31"), 404)
    assert "S9357" in body["detail"]


def test_no_rate_for_a_code_the_payer_does_not_cover_is_404(coordinator: Api, schedule):
    problem(
        coordinator.get(
            f"/payers/{schedule['id']}/rates/in-force", hcpcs="S9494", date="2026-12-01"
        ),
        404,
    )


def test_the_rate_in_force_of_an_unknown_payer_is_404(coordinator: Api):
    problem(coordinator.get("/payers/999999/rates/in-force", hcpcs="S9357", date="2026-12-01"), 404)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date": "2026-12-01"}, "hcpcs"),
        ({"hcpcs": "S9357"}, "date"),
        ({"hcpcs": "bad", "date": "2026-12-01"}, "hcpcs"),
        ({"hcpcs": "S9357", "date": "tomorrow"}, "date"),
        ({"hcpcs": "S9357", "date": "2026-12-01", "modifier": "SH"}, "modifier"),
    ],
)
def test_the_rate_in_force_needs_a_good_code_and_date(coordinator: Api, schedule, params, field):
    path = f"/payers/{schedule['id']}/rates/in-force"
    errors = problem(coordinator.get(path, **params), 422)["errors"]
    assert list(errors) == [field]


# --- lists -----------------------------------------------------------------------------------


def test_pages_of_two_walk_every_payer_once(coordinator: Api):
    created = [make_payer(coordinator)["id"] for _ in range(5)]
    seen: list[int] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = ok(coordinator.get("/payers", **params))
        assert len(page["items"]) <= 2
        seen.extend(p["id"] for p in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert cursor is None, "paging does not terminate"
    assert seen == sorted(set(seen))
    assert set(created) <= set(seen)


def test_the_list_carries_each_payers_rates_and_filters_by_name(coordinator: Api):
    payer = make_payer(coordinator)
    make_payer(coordinator)
    page = ok(coordinator.get("/payers", name=payer["name"]))
    assert page == {"items": [payer], "next_cursor": None}


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"cursor": "abc"}, {"x": "1"}])
def test_bad_list_parameters_are_refused(coordinator: Api, params):
    errors = problem(coordinator.get("/payers", **params), 422)["errors"]
    assert list(errors) == list(params)


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.WAREHOUSE, Role.FINANCE])
def test_warehouse_and_finance_can_read_payers_but_not_write_them(as_role, coordinator, role):
    payer = make_payer(coordinator)
    reader: Api = as_role(role)
    assert ok(reader.get(f"/payers/{payer['id']}")) == payer
    assert payer["id"] in [p["id"] for p in ok(reader.get("/payers", limit=500))["items"]]
    ok(reader.get(f"/payers/{payer['id']}/rates/in-force", hcpcs="S9357", date="2026-02-01"))
    problem(reader.post("/payers", payer_body()), 403)
    problem(reader.patch(f"/payers/{payer['id']}", {"name": unique("x")}), 403)
    assert ok(coordinator.get(f"/payers/{payer['id']}")) == payer


def test_a_driver_can_neither_read_nor_write_payers(as_role, coordinator):
    payer = make_payer(coordinator)
    driver: Api = as_role(Role.DRIVER)
    problem(driver.get("/payers"), 403)
    problem(driver.get(f"/payers/{payer['id']}"), 403)
    problem(
        driver.get(f"/payers/{payer['id']}/rates/in-force", hcpcs="S9357", date="2026-02-01"), 403
    )
    problem(driver.post("/payers", payer_body()), 403)
    problem(driver.patch(f"/payers/{payer['id']}", {"name": unique("x")}), 403)


def test_an_admin_can_write_payers(admin: Api):
    payer = make_payer(admin)
    assert (
        ok(admin.patch(f"/payers/{payer['id']}", {"modifier_multipliers": {}}))[
            "modifier_multipliers"
        ]
        == {}
    )


# --- service functions other features call -------------------------------------------------


def test_the_service_creates_and_finds_a_payer_from_the_dict_its_schema_loads(database):
    fields = PayerIn().load(payer_body(rates=[rate(amount="199.99")]))
    with database.transaction() as session:
        payer = service.create_payer(session, fields)
        assert service.get_payer(session, payer.id) is payer
        assert [(r.hcpcs, str(r.rate)) for r in payer.rates] == [("S9357", "199.9900")]
        assert payer.modifier_multipliers == {"SH": "0.5000", "SJ": "0.0000"}
        with pytest.raises(NotFound, match=r"^No payer 2147483647\.$"):
            service.get_payer(session, 2_147_483_647)
