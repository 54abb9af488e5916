"""Therapies and their infusion days: creation from schedules, moves, cancels, discontinuation.

Payers, patients and kit templates are made directly with the ORM (planning_builders), so
these tests do not depend on the care HTTP API.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from inventory.therapies.models import InfusionDayStatus
from inventory.users.models import Role
from tests.api.ledger_helpers import all_pages
from tests.api.planning_builders import (
    make_patient,
    make_payer,
    make_template,
    serial_status,
    set_day_status,
    today,
)
from tests.builders import Api, ok, problem

TODAY = today()


def iso(day: date) -> str:
    return day.isoformat()


def in_days(n: int) -> date:
    return TODAY + timedelta(days=n)


@pytest.fixture
def coordinator(as_role) -> Api:
    return as_role(Role.COORDINATOR)


@pytest.fixture
def shelf(catalog) -> dict[str, Any]:
    return catalog.location()


@pytest.fixture
def flush(catalog) -> dict[str, Any]:
    return catalog.item(tracking="lot", category="flush")


@pytest.fixture
def pump(catalog) -> dict[str, Any]:
    return catalog.item(tracking="serial", category="pump")


@pytest.fixture
def payer_id(database) -> int:
    return make_payer(database)


@pytest.fixture
def patient_id(database, payer_id) -> int:
    return make_patient(database, payer_id)


@pytest.fixture
def template_id(database, flush) -> int:
    """Two flushes per infusion day, no equipment."""
    return make_template(database, lines=[(flush["id"], 2)])


def therapy_body(
    patient_id: int,
    template_id: int,
    schedule: dict[str, Any],
    start: date = TODAY,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "template_id": template_id,
        "hcpcs": "S9357",
        "drug": "imiglucerase",
        "start_date": iso(start),
        "schedule": schedule,
        **fields,
    }


@pytest.fixture
def start_therapy(coordinator, patient_id, template_id):
    """POST a therapy for the default patient and template; returns the created therapy."""

    def start(schedule: dict[str, Any], start: date = TODAY, **fields: Any) -> dict[str, Any]:
        fields.setdefault("patient_id", patient_id)
        fields.setdefault("template_id", template_id)
        body = therapy_body(schedule=schedule, start=start, **fields)
        return ok(coordinator.post("/therapies", body), 201)

    return start


def days_of(api: Api, therapy_id: int, **filters: Any) -> list[dict[str, Any]]:
    return all_pages(api, f"/therapies/{therapy_id}/infusion-days", **filters)


def dates_of(api: Api, therapy_id: int, **filters: Any) -> list[str]:
    return [day["date"] for day in days_of(api, therapy_id, **filters)]


def active_reservations(api: Api, day_id: int) -> list[dict[str, Any]]:
    return all_pages(api, "/reservations", infusion_day_id=day_id, status="active")


def available(api: Api, item_id: int) -> int:
    return sum(row["available"] for row in all_pages(api, "/stock", item_id=item_id))


# --- creating therapies and their infusion days ------------------------------------------------


def test_every_14_days_from_today_creates_27_days_to_a_year_ahead(coordinator, start_therapy):
    therapy = start_therapy({"every_days": 14})

    assert therapy["status"] == "active"
    assert therapy["site"] == "SITE1"
    assert therapy["schedule"] == {"every_days": 14}
    assert therapy["scheduled_through"] == iso(in_days(365))
    assert (therapy["end_date"], therapy["discontinued_on"]) == (None, None)
    days = days_of(coordinator, therapy["id"])
    assert [day["date"] for day in days] == [iso(in_days(14 * n)) for n in range(27)]
    assert {day["status"] for day in days} == {"scheduled"}
    assert {day["kit_id"] for day in days} == {None}
    assert all(day["missing"] == [] for day in days)
    assert {day["therapy_id"] for day in days} == {therapy["id"]}
    assert {day["patient_id"] for day in days} == {therapy["patient_id"]}


def test_weekdays_create_a_day_on_each_of_those_weekdays(coordinator, start_therapy):
    therapy = start_therapy({"weekdays": ["mon", "thu"]}, end_date=iso(in_days(20)))

    expected = [iso(in_days(n)) for n in range(21) if in_days(n).weekday() in (0, 3)]
    assert len(expected) == 6
    assert dates_of(coordinator, therapy["id"]) == expected
    assert therapy["schedule"] == {"weekdays": ["mon", "thu"]}


def test_explicit_dates_create_exactly_those_days_in_date_order(coordinator, start_therapy):
    dates = [iso(in_days(30)), iso(in_days(2)), iso(in_days(9))]
    therapy = start_therapy({"dates": dates})

    assert dates_of(coordinator, therapy["id"]) == [iso(in_days(n)) for n in (2, 9, 30)]
    assert therapy["schedule"] == {"dates": [iso(in_days(n)) for n in (2, 9, 30)]}


def test_the_end_date_bounds_the_days_it_creates(coordinator, start_therapy):
    therapy = start_therapy({"every_days": 7}, end_date=iso(in_days(28)))

    assert dates_of(coordinator, therapy["id"]) == [iso(in_days(n)) for n in (0, 7, 14, 21, 28)]
    assert therapy["scheduled_through"] == iso(in_days(28))
    assert therapy["end_date"] == iso(in_days(28))


def test_a_therapy_that_started_in_the_past_only_gets_days_from_today(coordinator, start_therapy):
    therapy = start_therapy({"every_days": 7}, start=in_days(-21), end_date=iso(in_days(14)))

    assert dates_of(coordinator, therapy["id"]) == [iso(in_days(n)) for n in (0, 7, 14)]


def test_a_therapy_starting_later_rolls_its_year_from_its_start(coordinator, start_therapy):
    therapy = start_therapy({"every_days": 14}, start=in_days(10))

    dates = dates_of(coordinator, therapy["id"])
    assert dates == [iso(in_days(10 + 14 * n)) for n in range(27)]
    assert therapy["scheduled_through"] == iso(in_days(10 + 365))


def test_a_therapy_keeps_its_optional_fields(start_therapy):
    therapy = start_therapy({"every_days": 14}, modifier="SH", note="second therapy")
    assert (therapy["modifier"], therapy["drug"], therapy["note"]) == (
        "SH",
        "imiglucerase",
        "second therapy",
    )


def test_a_therapy_takes_its_site_from_the_patient(database, coordinator, payer_id, template_id):
    elsewhere = make_patient(database, payer_id, site="SITE2")
    body = therapy_body(elsewhere, template_id, {"every_days": 14})
    therapy = ok(coordinator.post("/therapies", body), 201)

    assert therapy["site"] == "SITE2"


def test_admin_may_create_a_therapy(admin, patient_id, template_id):
    body = therapy_body(patient_id, template_id, {"dates": [iso(in_days(1))]})
    therapy = ok(admin.post("/therapies", body), 201)
    assert dates_of(admin, therapy["id"]) == [iso(in_days(1))]


# --- reading therapies ---------------------------------------------------------------------------


def test_a_therapy_reads_back_as_created(coordinator, start_therapy):
    therapy = start_therapy({"every_days": 14}, end_date=iso(in_days(60)))
    read = ok(coordinator.get(f"/therapies/{therapy['id']}"))
    assert read == therapy
    assert (read["hcpcs"], read["start_date"], read["end_date"]) == (
        "S9357",
        iso(TODAY),
        iso(in_days(60)),
    )


def test_therapies_are_listed_and_filtered_by_patient_site_and_status(
    database, coordinator, payer_id, patient_id, template_id, start_therapy
):
    other_patient = make_patient(database, payer_id, site="SITE2")
    mine = start_therapy({"every_days": 14})
    theirs = start_therapy({"every_days": 7}, patient_id=other_patient)
    ok(coordinator.post(f"/therapies/{theirs['id']}/discontinue", {"end_date": iso(TODAY)}))

    def ids(**filters: Any) -> list[int]:
        return [t["id"] for t in all_pages(coordinator, "/therapies", **filters)]

    assert ids() == [mine["id"], theirs["id"]]
    assert ids(patient_id=patient_id) == [mine["id"]]
    assert ids(patient_id=other_patient) == [theirs["id"]]
    assert ids(site="SITE2") == [theirs["id"]]
    assert ids(status="active") == [mine["id"]]
    assert ids(status="discontinued") == [theirs["id"]]
    assert ids(site="SITE1", status="discontinued") == []


def test_the_therapy_list_pages_with_a_cursor(coordinator, start_therapy):
    created = [start_therapy({"every_days": 30})["id"] for _ in range(3)]
    first = ok(coordinator.get("/therapies", limit=2))
    second = ok(coordinator.get("/therapies", limit=2, cursor=first["next_cursor"]))
    assert [t["id"] for t in first["items"]] == created[:2]
    assert [t["id"] for t in second["items"]] == created[2:]
    assert second["next_cursor"] is None


def test_infusion_days_page_by_date_without_losing_a_moved_day(coordinator, start_therapy):
    therapy = start_therapy({"dates": [iso(in_days(n)) for n in (20, 21, 22)]})
    first, _, _ = days_of(coordinator, therapy["id"])
    ok(coordinator.patch(f"/infusion-days/{first['id']}", {"date": iso(in_days(30))}))

    seen, cursor = [], None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = ok(coordinator.get(f"/therapies/{therapy['id']}/infusion-days", **params))
        seen.extend(day["date"] for day in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [iso(in_days(n)) for n in (21, 22, 30)]


@pytest.mark.parametrize("cursor", ["5", "999999999999999999"])
def test_an_infusion_day_cursor_this_service_never_issued_is_refused(
    coordinator, start_therapy, cursor
):
    therapy = start_therapy({"dates": [iso(in_days(1))]})
    response = coordinator.get(f"/therapies/{therapy['id']}/infusion-days", cursor=cursor)
    assert list(problem(response, 422)["errors"]) == ["cursor"]


def test_an_unknown_status_filter_is_refused(coordinator):
    body = problem(coordinator.get("/therapies", status="paused"), 422)
    assert list(body["errors"]) == ["status"]


def test_infusion_days_can_be_filtered_by_status(coordinator, start_therapy):
    therapy = start_therapy({"dates": [iso(in_days(n)) for n in (1, 2, 3)]})
    first, second, _ = days_of(coordinator, therapy["id"])
    ok(coordinator.patch(f"/infusion-days/{second['id']}", {"status": "cancelled"}))

    assert dates_of(coordinator, therapy["id"], status="cancelled") == [iso(in_days(2))]
    assert dates_of(coordinator, therapy["id"], status="scheduled") == [
        iso(in_days(1)),
        iso(in_days(3)),
    ]
    assert first["status"] == "scheduled"


def test_an_infusion_day_reads_back_with_an_etag(coordinator, start_therapy):
    therapy = start_therapy({"dates": [iso(in_days(4))]})
    [listed] = days_of(coordinator, therapy["id"])
    response = coordinator.get(f"/infusion-days/{listed['id']}")
    assert ok(response) == listed
    assert response.headers["ETag"].startswith('"infusion-day-')


def test_an_unknown_therapy_is_not_found(coordinator):
    assert "999999" in problem(coordinator.get("/therapies/999999"), 404)["detail"]
    problem(coordinator.get("/therapies/999999/infusion-days"), 404)
    problem(coordinator.post("/therapies/999999/discontinue", {"end_date": iso(TODAY)}), 404)


def test_an_unknown_infusion_day_is_not_found(coordinator):
    problem(coordinator.get("/infusion-days/999999"), 404)
    problem(coordinator.patch("/infusion-days/999999", {"status": "cancelled"}), 404)


# --- refusing bad therapies ----------------------------------------------------------------------


@pytest.fixture
def refused(coordinator, patient_id, template_id):
    """POST a therapy that must be refused, and check that none was created."""

    def post(status: int, schedule: Any = None, **fields: Any) -> dict[str, Any]:
        fields.setdefault("patient_id", patient_id)
        fields.setdefault("template_id", template_id)
        if schedule is None:
            schedule = {"every_days": 14}
        body = therapy_body(schedule=schedule, **fields)
        result = problem(coordinator.post("/therapies", body), status)
        assert all_pages(coordinator, "/therapies") == []
        return result

    return post


def test_a_schedule_without_a_rule_is_refused(refused):
    body = refused(422, schedule={})
    assert body["errors"] == {
        "schedule._schema": ["Give exactly one of every_days, weekdays or dates."]
    }


def test_a_schedule_whose_only_rule_is_null_is_refused(refused):
    body = refused(422, schedule={"every_days": None})
    assert list(body["errors"]) == ["schedule.every_days"]


def test_a_schedule_with_two_rules_is_refused(refused):
    body = refused(422, schedule={"every_days": 14, "weekdays": ["mon"]})
    assert body["errors"] == {
        "schedule._schema": ["Give exactly one of every_days, weekdays or dates."]
    }


def test_an_unknown_schedule_rule_is_refused(refused):
    body = refused(422, schedule={"monthly": 1})
    assert "schedule.monthly" in body["errors"]


@pytest.mark.parametrize("every_days", [0, 366, "14", 14.5])
def test_every_days_must_be_a_whole_number_from_1_to_365(refused, every_days):
    body = refused(422, schedule={"every_days": every_days})
    assert list(body["errors"]) == ["schedule.every_days"]


def test_an_unknown_weekday_is_refused(refused):
    body = refused(422, schedule={"weekdays": ["mon", "someday"]})
    assert list(body["errors"]) == ["schedule.weekdays.1"]


def test_an_end_date_before_the_start_date_is_refused(refused):
    body = refused(422, end_date=iso(in_days(-1)))
    assert list(body["errors"]) == ["end_date"]


def test_an_unknown_patient_is_refused_naming_the_field(refused):
    body = refused(422, patient_id=999999)
    assert list(body["errors"]) == ["patient_id"]


def test_an_unknown_template_is_refused_naming_the_field(refused):
    body = refused(422, template_id=999999)
    assert list(body["errors"]) == ["template_id"]


def test_a_schedule_date_before_the_start_is_refused(refused):
    body = refused(422, schedule={"dates": [iso(in_days(-1)), iso(in_days(3))]})
    assert list(body["errors"]) == ["schedule.dates"]


def test_a_schedule_date_after_the_end_is_refused(refused):
    body = refused(
        422, schedule={"dates": [iso(in_days(3)), iso(in_days(40))]}, end_date=iso(in_days(30))
    )
    assert list(body["errors"]) == ["schedule.dates"]


def test_a_malformed_hcpcs_code_is_refused(refused):
    body = refused(422, hcpcs="9357")
    assert list(body["errors"]) == ["hcpcs"]


def test_a_missing_start_date_is_refused(coordinator, patient_id, template_id):
    body = therapy_body(patient_id, template_id, {"every_days": 14})
    del body["start_date"]
    assert list(problem(coordinator.post("/therapies", body), 422)["errors"]) == ["start_date"]


@pytest.mark.parametrize("role", [Role.WAREHOUSE, Role.FINANCE, Role.DRIVER])
def test_only_coordinators_and_admins_may_create_therapies(as_role, patient_id, template_id, role):
    body = therapy_body(patient_id, template_id, {"every_days": 14})
    problem(as_role(role).post("/therapies", body), 403)


@pytest.mark.parametrize("role", [Role.WAREHOUSE, Role.FINANCE])
def test_warehouse_and_finance_may_read_therapies_and_days(as_role, start_therapy, role):
    therapy = start_therapy({"dates": [iso(in_days(1))]})
    reader = as_role(role)
    assert ok(reader.get(f"/therapies/{therapy['id']}"))["id"] == therapy["id"]
    assert dates_of(reader, therapy["id"]) == [iso(in_days(1))]


def test_a_driver_may_not_read_therapies(as_role, start_therapy):
    therapy = start_therapy({"dates": [iso(in_days(1))]})
    driver = as_role(Role.DRIVER)
    problem(driver.get("/therapies"), 403)
    problem(driver.get(f"/therapies/{therapy['id']}/infusion-days"), 403)


# --- moving and cancelling infusion days ---------------------------------------------------------


@pytest.fixture
def stocked(catalog, shelf, flush):
    """Ten flushes on the shelf, in one lot good for a year."""
    return catalog.receive(flush, shelf, 10, lot="FL-1", expiry=in_days(365))


def reserve(api: Api, day_id: int) -> dict[str, Any]:
    return ok(api.post(f"/infusion-days/{day_id}/reserve"))


def test_moving_a_day_within_the_horizon_releases_and_replans_it_on_its_new_date(
    coordinator, start_therapy, stocked, flush
):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(coordinator, therapy["id"])
    reserve(coordinator, day["id"])
    [before] = active_reservations(coordinator, day["id"])
    assert available(coordinator, flush["id"]) == 8

    moved = ok(coordinator.patch(f"/infusion-days/{day['id']}", {"date": iso(in_days(5))}))

    assert (moved["date"], moved["status"], moved["missing"]) == (iso(in_days(5)), "reserved", [])
    [after] = active_reservations(coordinator, day["id"])
    assert after["id"] != before["id"]
    assert (after["item_id"], after["lot"], after["quantity"]) == (flush["id"], "FL-1", 2)
    [released] = all_pages(
        coordinator, "/reservations", infusion_day_id=day["id"], status="released"
    )
    assert (released["id"], released["release_reason"]) == (before["id"], "day moved")
    assert available(coordinator, flush["id"]) == 8
    assert dates_of(coordinator, therapy["id"]) == [iso(in_days(5))]


def test_moving_a_day_beyond_the_horizon_releases_it_and_leaves_it_scheduled(
    coordinator, start_therapy, stocked, flush
):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(coordinator, therapy["id"])
    reserve(coordinator, day["id"])

    moved = ok(coordinator.patch(f"/infusion-days/{day['id']}", {"date": iso(in_days(40))}))

    assert (moved["date"], moved["status"]) == (iso(in_days(40)), "scheduled")
    assert active_reservations(coordinator, day["id"]) == []
    assert available(coordinator, flush["id"]) == 10


def test_moving_a_scheduled_day_to_the_last_day_of_the_horizon_reserves_it(
    coordinator, start_therapy, stocked
):
    therapy = start_therapy({"dates": [iso(in_days(20))]})
    [day] = days_of(coordinator, therapy["id"])

    moved = ok(coordinator.patch(f"/infusion-days/{day['id']}", {"date": iso(in_days(13))}))

    assert moved["status"] == "reserved"
    assert [r["quantity"] for r in active_reservations(coordinator, day["id"])] == [2]


def test_moving_a_day_today_is_allowed(coordinator, start_therapy, stocked):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(coordinator, therapy["id"])
    moved = ok(coordinator.patch(f"/infusion-days/{day['id']}", {"date": iso(TODAY)}))
    assert (moved["date"], moved["status"]) == (iso(TODAY), "reserved")


def test_moving_a_day_into_the_past_is_refused(coordinator, start_therapy, stocked, flush):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(coordinator, therapy["id"])
    reserve(coordinator, day["id"])

    body = problem(
        coordinator.patch(f"/infusion-days/{day['id']}", {"date": iso(in_days(-1))}), 422
    )

    assert list(body["errors"]) == ["date"]
    read = ok(coordinator.get(f"/infusion-days/{day['id']}"))
    assert (read["date"], read["status"]) == (iso(in_days(3)), "reserved")
    assert len(active_reservations(coordinator, day["id"])) == 1


def test_moving_a_day_onto_another_day_of_the_therapy_is_a_conflict(coordinator, start_therapy):
    therapy = start_therapy({"dates": [iso(in_days(3)), iso(in_days(6))]})
    first, second = days_of(coordinator, therapy["id"])

    body = problem(
        coordinator.patch(f"/infusion-days/{first['id']}", {"date": second["date"]}), 409
    )

    assert str(second["id"]) in body["detail"]
    assert dates_of(coordinator, therapy["id"]) == [iso(in_days(3)), iso(in_days(6))]


def test_moving_a_day_onto_a_cancelled_day_of_the_therapy_is_allowed(coordinator, start_therapy):
    therapy = start_therapy({"dates": [iso(in_days(3)), iso(in_days(20))]})
    first, second = days_of(coordinator, therapy["id"])
    ok(coordinator.patch(f"/infusion-days/{first['id']}", {"status": "cancelled"}))

    moved = ok(coordinator.patch(f"/infusion-days/{second['id']}", {"date": iso(in_days(3))}))

    assert moved["date"] == iso(in_days(3))
    assert [(d["date"], d["status"]) for d in days_of(coordinator, therapy["id"])] == [
        (iso(in_days(3)), "cancelled"),
        (iso(in_days(3)), "short"),
    ]


def test_cancelling_a_day_releases_its_reservations_and_frees_the_stock(
    coordinator, start_therapy, stocked, flush
):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(coordinator, therapy["id"])
    reserve(coordinator, day["id"])
    assert available(coordinator, flush["id"]) == 8

    cancelled = ok(coordinator.patch(f"/infusion-days/{day['id']}", {"status": "cancelled"}))

    assert (cancelled["status"], cancelled["date"]) == ("cancelled", iso(in_days(3)))
    assert active_reservations(coordinator, day["id"]) == []
    [released] = all_pages(coordinator, "/reservations", infusion_day_id=day["id"])
    assert (released["status"], released["release_reason"]) == ("released", "day cancelled")
    assert available(coordinator, flush["id"]) == 10


def test_a_cancelled_day_is_not_planned_again(coordinator, start_therapy, stocked, flush):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(coordinator, therapy["id"])
    ok(coordinator.patch(f"/infusion-days/{day['id']}", {"status": "cancelled"}))

    run = ok(coordinator.post("/planning/run", {}))

    assert (run["reserved_lines"], run["days_considered"]) == (0, 0)
    assert available(coordinator, flush["id"]) == 10


def test_a_cancelled_day_cannot_be_cancelled_or_moved_again(coordinator, start_therapy):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(coordinator, therapy["id"])
    ok(coordinator.patch(f"/infusion-days/{day['id']}", {"status": "cancelled"}))

    problem(coordinator.patch(f"/infusion-days/{day['id']}", {"status": "cancelled"}), 409)
    problem(coordinator.patch(f"/infusion-days/{day['id']}", {"date": iso(in_days(4))}), 409)


@pytest.mark.parametrize("status", [InfusionDayStatus.PACKED, InfusionDayStatus.DELIVERED])
def test_a_packed_or_delivered_day_cannot_be_cancelled_or_moved(
    database, coordinator, start_therapy, status
):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(coordinator, therapy["id"])
    set_day_status(database, day["id"], status)

    body = problem(coordinator.patch(f"/infusion-days/{day['id']}", {"status": "cancelled"}), 409)
    assert status.value in body["detail"]
    problem(coordinator.patch(f"/infusion-days/{day['id']}", {"date": iso(in_days(4))}), 409)
    assert ok(coordinator.get(f"/infusion-days/{day['id']}"))["status"] == status.value


def test_a_stale_if_match_is_refused_and_changes_nothing(coordinator, start_therapy):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(coordinator, therapy["id"])
    path = f"/infusion-days/{day['id']}"
    etag = coordinator.get(path).headers["ETag"]
    moved = coordinator.patch(path, {"date": iso(in_days(4))}, headers={"If-Match": etag})
    assert ok(moved)["date"] == iso(in_days(4))
    assert moved.headers["ETag"] != etag

    problem(coordinator.patch(path, {"status": "cancelled"}, headers={"If-Match": etag}), 412)

    assert ok(coordinator.get(path))["status"] == "short"


def test_a_current_if_match_is_accepted(coordinator, start_therapy):
    therapy = start_therapy({"dates": [iso(in_days(30))]})
    [day] = days_of(coordinator, therapy["id"])
    path = f"/infusion-days/{day['id']}"
    etag = coordinator.get(path).headers["ETag"]
    response = coordinator.patch(path, {"status": "cancelled"}, headers={"If-Match": etag})
    assert ok(response)["status"] == "cancelled"
    assert coordinator.get(path).headers["ETag"] == response.headers["ETag"]


def test_changing_both_date_and_status_at_once_is_refused(coordinator, start_therapy):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(coordinator, therapy["id"])
    body = problem(
        coordinator.patch(
            f"/infusion-days/{day['id']}", {"date": iso(in_days(4)), "status": "cancelled"}
        ),
        422,
    )
    assert "either date" in str(body["errors"])
    assert ok(coordinator.get(f"/infusion-days/{day['id']}"))["date"] == iso(in_days(3))


def test_an_empty_change_is_refused(coordinator, start_therapy):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(coordinator, therapy["id"])
    problem(coordinator.patch(f"/infusion-days/{day['id']}", {}), 422)


@pytest.mark.parametrize("status", ["packed", "scheduled", "delivered"])
def test_only_cancelled_may_be_set_as_a_status(coordinator, start_therapy, status):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(coordinator, therapy["id"])
    body = problem(coordinator.patch(f"/infusion-days/{day['id']}", {"status": status}), 422)
    assert list(body["errors"]) == ["status"]


@pytest.mark.parametrize("role", [Role.WAREHOUSE, Role.FINANCE, Role.DRIVER])
def test_only_coordinators_and_admins_may_change_a_day(as_role, start_therapy, role):
    therapy = start_therapy({"dates": [iso(in_days(3))]})
    [day] = days_of(as_role(Role.ADMIN), therapy["id"])
    problem(as_role(role).patch(f"/infusion-days/{day['id']}", {"status": "cancelled"}), 403)


# --- discontinuing a therapy ---------------------------------------------------------------------


@pytest.fixture
def course(database, catalog, shelf, flush, pump, patient_id, coordinator, stocked):
    """A weekly therapy with two flushes a day and a pump for the course, planned 14 days out."""
    catalog.receive(pump, shelf, 1, serials=["PUMP-1"])
    template = make_template(database, lines=[(flush["id"], 2)], equipment=[(pump["id"], 1)])
    therapy = ok(
        coordinator.post("/therapies", therapy_body(patient_id, template, {"every_days": 7})), 201
    )
    run = ok(coordinator.post("/planning/run", {"horizon_days": 14}))
    assert (run["days_fully_reserved"], run["equipment_reserved"]) == (2, 1)
    return therapy


def test_discontinuing_cancels_later_days_and_releases_their_reservations(
    database, coordinator, course, flush, pump
):
    therapy_id = course["id"]
    stopped = ok(coordinator.post(f"/therapies/{therapy_id}/discontinue", {"end_date": iso(TODAY)}))

    assert (stopped["status"], stopped["end_date"], stopped["discontinued_on"]) == (
        "discontinued",
        iso(TODAY),
        iso(TODAY),
    )
    assert stopped["equipment_pickup_due"] == iso(in_days(1))
    days = days_of(coordinator, therapy_id)
    assert (days[0]["date"], days[0]["status"]) == (iso(TODAY), "reserved")
    assert {d["status"] for d in days[1:]} == {"cancelled"}
    assert len(days) == 53
    [kept] = active_reservations(coordinator, days[0]["id"])
    assert kept["quantity"] == 2
    assert active_reservations(coordinator, days[1]["id"]) == []
    assert available(coordinator, flush["id"]) == 8
    equipment = all_pages(coordinator, "/reservations", therapy_id=therapy_id, item_id=pump["id"])
    assert [(r["serial"], r["status"], r["release_reason"]) for r in equipment] == [
        ("PUMP-1", "released", "therapy discontinued")
    ]
    assert serial_status(database, pump["id"], "PUMP-1") == "available"


def test_a_discontinued_therapy_with_a_future_end_keeps_days_up_to_it(coordinator, course):
    therapy_id = course["id"]
    stopped = ok(
        coordinator.post(
            f"/therapies/{therapy_id}/discontinue",
            {"end_date": iso(in_days(7)), "note": "hospital stay"},
        )
    )

    assert (stopped["end_date"], stopped["note"]) == (iso(in_days(7)), "hospital stay")
    assert stopped["equipment_pickup_due"] == iso(in_days(8))
    days = days_of(coordinator, therapy_id)
    assert [(d["date"], d["status"]) for d in days[:3]] == [
        (iso(TODAY), "reserved"),
        (iso(in_days(7)), "reserved"),
        (iso(in_days(14)), "cancelled"),
    ]
    assert dates_of(coordinator, therapy_id, status="cancelled")[-1] == iso(in_days(364))


def test_discontinuing_without_course_equipment_schedules_no_pickup(coordinator, start_therapy):
    therapy = start_therapy({"every_days": 7})
    stopped = ok(
        coordinator.post(f"/therapies/{therapy['id']}/discontinue", {"end_date": iso(TODAY)})
    )
    assert (stopped["status"], stopped["equipment_pickup_due"]) == ("discontinued", None)


def test_discontinuing_twice_is_a_conflict(coordinator, start_therapy):
    therapy = start_therapy({"every_days": 7})
    path = f"/therapies/{therapy['id']}/discontinue"
    ok(coordinator.post(path, {"end_date": iso(in_days(7))}))

    body = problem(coordinator.post(path, {"end_date": iso(in_days(14))}), 409)

    assert "already discontinued" in body["detail"]
    assert ok(coordinator.get(f"/therapies/{therapy['id']}"))["end_date"] == iso(in_days(7))


def test_a_discontinue_end_date_before_the_start_is_refused(coordinator, start_therapy):
    therapy = start_therapy({"every_days": 7})
    body = problem(
        coordinator.post(f"/therapies/{therapy['id']}/discontinue", {"end_date": iso(in_days(-1))}),
        422,
    )
    assert list(body["errors"]) == ["end_date"]
    assert ok(coordinator.get(f"/therapies/{therapy['id']}"))["status"] == "active"
    assert dates_of(coordinator, therapy["id"], status="cancelled") == []


def test_discontinuing_needs_an_end_date(coordinator, start_therapy):
    therapy = start_therapy({"every_days": 7})
    body = problem(coordinator.post(f"/therapies/{therapy['id']}/discontinue", {}), 422)
    assert list(body["errors"]) == ["end_date"]


def test_discontinuing_is_refused_while_a_later_day_is_packed(database, coordinator, start_therapy):
    therapy = start_therapy({"dates": [iso(in_days(n)) for n in (1, 8, 15)]})
    _, packed, later = days_of(coordinator, therapy["id"])
    set_day_status(database, packed["id"], InfusionDayStatus.PACKED)

    body = problem(
        coordinator.post(f"/therapies/{therapy['id']}/discontinue", {"end_date": iso(in_days(1))}),
        409,
    )

    assert body["infusion_day_ids"] == [packed["id"]]
    assert ok(coordinator.get(f"/infusion-days/{later['id']}"))["status"] == "scheduled"
    assert ok(coordinator.get(f"/therapies/{therapy['id']}"))["status"] == "active"


def test_a_discontinued_therapy_is_not_planned_after_its_end(coordinator, course, flush):
    ok(coordinator.post(f"/therapies/{course['id']}/discontinue", {"end_date": iso(TODAY)}))
    run = ok(coordinator.post("/planning/run", {"horizon_days": 14}))
    assert (run["reserved_lines"], run["equipment_reserved"]) == (0, 0)
    assert available(coordinator, flush["id"]) == 8


def test_discontinuing_cannot_push_the_end_date_past_the_planned_end(database, as_role):
    from tests.api.planning_builders import make_patient, make_payer, make_template

    coordinator = as_role("coordinator")
    template = make_template(database, lines=[])
    patient = make_patient(database, make_payer(database))
    start = date.today()
    therapy = coordinator.post(
        "/therapies",
        {
            "patient_id": patient,
            "template_id": template,
            "hcpcs": "S9357",
            "start_date": start.isoformat(),
            "end_date": (start + timedelta(days=28)).isoformat(),
            "schedule": {"every_days": 14},
        },
    ).get_json()
    late = (start + timedelta(days=100)).isoformat()
    body = problem(
        coordinator.post(f"/therapies/{therapy['id']}/discontinue", {"end_date": late}), 422
    )
    assert "end_date" in body["errors"]
    days = coordinator.get(f"/therapies/{therapy['id']}/infusion-days").get_json()["items"]
    moved = coordinator.patch(f"/infusion-days/{days[-1]['id']}", {"date": late})
    assert "date" in problem(moved, 422)["errors"]
