"""Planning runs, single-day reservations, the reservations list, shortages and reorder
suggestions. Payers, patients and kit templates are made with the ORM (planning_builders)."""

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
    set_pm_due,
    today,
)
from tests.builders import Api, ok, problem

TODAY = today()


def in_days(n: int) -> date:
    return TODAY + timedelta(days=n)


def iso(day: date) -> str:
    return day.isoformat()


@pytest.fixture
def coordinator(as_role) -> Api:
    return as_role(Role.COORDINATOR)


@pytest.fixture
def shelf(catalog) -> dict[str, Any]:
    return catalog.location(kind="storage", site="SITE1")


@pytest.fixture
def flush(catalog) -> dict[str, Any]:
    return catalog.item(tracking="lot", category="flush")


@pytest.fixture
def gloves(catalog) -> dict[str, Any]:
    return catalog.item(tracking="none", category="ppe")


@pytest.fixture
def pump(catalog) -> dict[str, Any]:
    return catalog.item(tracking="serial", category="pump")


@pytest.fixture
def payer_id(database) -> int:
    return make_payer(database)


@pytest.fixture
def patient_id(database, payer_id) -> int:
    return make_patient(database, payer_id, site="SITE1")


@pytest.fixture
def template_id(database, flush) -> int:
    """Four flushes per infusion day."""
    return make_template(database, lines=[(flush["id"], 4)])


def start_therapy(
    api: Api, patient_id: int, template_id: int, *offsets: int, **fields: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A therapy with infusion days ``offsets`` days from today; returns it and its days."""
    body = {
        "patient_id": patient_id,
        "template_id": template_id,
        "hcpcs": "S9357",
        "start_date": iso(TODAY),
        "schedule": {"dates": [iso(in_days(n)) for n in offsets]},
        **fields,
    }
    therapy = ok(api.post("/therapies", body), 201)
    days = all_pages(api, f"/therapies/{therapy['id']}/infusion-days")
    assert [day["date"] for day in days] == sorted(iso(in_days(n)) for n in offsets)
    return therapy, days


@pytest.fixture
def therapy_on(coordinator, patient_id, template_id):
    """``therapy_on(1, 3)``: a therapy for the default patient and template on those days."""

    def make(*offsets: int, **fields: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        fields.setdefault("patient_id", patient_id)
        fields.setdefault("template_id", template_id)
        return start_therapy(
            coordinator, fields.pop("patient_id"), fields.pop("template_id"), *offsets, **fields
        )

    return make


def plan(api: Api, status: int = 200, **body: Any) -> dict[str, Any]:
    return ok(api.post("/planning/run", body), status)


def counts(run: dict[str, Any]) -> tuple[int, int, int, int]:
    """(reserved_lines, short_lines, days_fully_reserved, days_short) of a run."""
    return (
        run["reserved_lines"],
        run["short_lines"],
        run["days_fully_reserved"],
        run["days_short"],
    )


def held(api: Api, **filters: Any) -> list[tuple[Any, ...]]:
    """(infusion_day_id, item_id, lot, quantity) of active reservations, in id order."""
    rows = all_pages(api, "/reservations", status="active", **filters)
    return [(r["infusion_day_id"], r["item_id"], r["lot"], r["quantity"]) for r in rows]


def day(api: Api, day_id: int) -> dict[str, Any]:
    return ok(api.get(f"/infusion-days/{day_id}"))


def stock_row(api: Api, item_id: int, location_id: int) -> tuple[int, int, int]:
    """(on_hand, reserved, available) summed over lots at one location."""
    rows = all_pages(api, "/stock", item_id=item_id, location_id=location_id)
    return (
        sum(r["on_hand"] for r in rows),
        sum(r["reserved"] for r in rows),
        sum(r["available"] for r in rows),
    )


# --- FEFO reservations -------------------------------------------------------------------------


def test_a_run_reserves_the_lot_that_expires_first(coordinator, catalog, shelf, flush, therapy_on):
    catalog.receive(flush, shelf, 10, lot="LATE", expiry=in_days(200))
    catalog.receive(flush, shelf, 10, lot="SOON", expiry=in_days(100))
    _, [first] = therapy_on(1)

    run = plan(coordinator)

    assert counts(run) == (1, 0, 1, 0)
    assert (run["days_considered"], run["short"], run["horizon_end"]) == (1, [], iso(in_days(13)))
    assert held(coordinator) == [(first["id"], flush["id"], "SOON", 4)]
    assert (day(coordinator, first["id"])["status"], day(coordinator, first["id"])["missing"]) == (
        "reserved",
        [],
    )
    assert stock_row(coordinator, flush["id"], shelf["id"]) == (20, 4, 16)


def test_a_lot_expiring_before_a_day_is_not_used_for_it_but_serves_an_earlier_day(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 10, lot="SOON", expiry=in_days(5))
    catalog.receive(flush, shelf, 10, lot="LATE", expiry=in_days(300))
    _, [early, late] = therapy_on(2, 9)

    run = plan(coordinator)

    assert counts(run) == (2, 0, 2, 0)
    assert held(coordinator) == [
        (early["id"], flush["id"], "SOON", 4),
        (late["id"], flush["id"], "LATE", 4),
    ]


def test_a_lot_expiring_on_the_day_itself_is_good_for_that_day(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 10, lot="LATE", expiry=in_days(300))
    catalog.receive(flush, shelf, 10, lot="EDGE", expiry=in_days(3))
    _, [only] = therapy_on(3)

    plan(coordinator)

    assert held(coordinator) == [(only["id"], flush["id"], "EDGE", 4)]


def test_a_day_larger_than_the_first_lot_splits_across_lots(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 3, lot="FIRST", expiry=in_days(60))
    catalog.receive(flush, shelf, 10, lot="NEXT", expiry=in_days(90))
    _, [only] = therapy_on(1)

    run = plan(coordinator)

    assert counts(run) == (2, 0, 1, 0)
    assert held(coordinator) == [
        (only["id"], flush["id"], "FIRST", 3),
        (only["id"], flush["id"], "NEXT", 1),
    ]


def test_untracked_stock_is_reserved_for_any_day(
    database, coordinator, catalog, shelf, gloves, patient_id
):
    catalog.receive(gloves, shelf, 5)
    template = make_template(database, lines=[(gloves["id"], 2)])
    _, [first, second] = start_therapy(coordinator, patient_id, template, 0, 13)

    assert counts(plan(coordinator)) == (2, 0, 2, 0)
    assert held(coordinator) == [
        (first["id"], gloves["id"], None, 2),
        (second["id"], gloves["id"], None, 2),
    ]


def test_a_day_short_of_stock_records_exactly_what_it_is_missing(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 6, lot="ONLY", expiry=in_days(100))
    therapy, [first, second] = therapy_on(1, 3)

    run = plan(coordinator)

    assert counts(run) == (2, 1, 1, 1)
    assert run["short"] == [{"infusion_day_id": second["id"], "item_id": flush["id"], "missing": 2}]
    assert held(coordinator) == [
        (first["id"], flush["id"], "ONLY", 4),
        (second["id"], flush["id"], "ONLY", 2),
    ]
    short = day(coordinator, second["id"])
    assert (short["status"], short["missing"]) == (
        "short",
        [{"item_id": flush["id"], "missing": 2}],
    )
    listed = all_pages(coordinator, f"/therapies/{therapy['id']}/infusion-days")
    assert [(d["status"], d["missing"]) for d in listed] == [
        ("reserved", []),
        ("short", [{"item_id": flush["id"], "missing": 2}]),
    ]
    assert stock_row(coordinator, flush["id"], shelf["id"]) == (6, 6, 0)


def test_an_item_with_no_stock_at_all_is_missing_in_full(
    database, coordinator, catalog, shelf, flush, gloves, patient_id
):
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    template = make_template(database, lines=[(flush["id"], 4), (gloves["id"], 2)])
    _, [only] = start_therapy(coordinator, patient_id, template, 2)

    run = plan(coordinator)

    assert counts(run) == (1, 1, 0, 1)
    assert day(coordinator, only["id"])["missing"] == [{"item_id": gloves["id"], "missing": 2}]
    assert held(coordinator) == [(only["id"], flush["id"], "FL", 4)]


def test_a_second_run_with_nothing_changed_reserves_nothing(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 20, lot="FL", expiry=in_days(100))
    therapy_on(1, 5, 9)
    assert counts(plan(coordinator)) == (3, 0, 3, 0)
    before = all_pages(coordinator, "/reservations")

    again = plan(coordinator)

    assert counts(again) == (0, 0, 0, 0)
    assert (again["days_considered"], again["equipment_reserved"], again["short"]) == (0, 0, [])
    assert all_pages(coordinator, "/reservations") == before


def test_a_short_day_stays_short_on_a_second_run_then_fills_once_stock_arrives(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 6, lot="ONE", expiry=in_days(100))
    _, [_, second] = therapy_on(1, 3)
    plan(coordinator)

    again = plan(coordinator)
    assert counts(again) == (0, 1, 0, 1)
    assert again["days_considered"] == 1
    assert again["short"] == [
        {"infusion_day_id": second["id"], "item_id": flush["id"], "missing": 2}
    ]

    catalog.receive(flush, shelf, 5, lot="TWO", expiry=in_days(200))
    filled = plan(coordinator)

    assert counts(filled) == (1, 0, 1, 0)
    assert (
        day(coordinator, second["id"])["status"],
        day(coordinator, second["id"])["missing"],
    ) == (
        "reserved",
        [],
    )
    assert held(coordinator, infusion_day_id=second["id"]) == [
        (second["id"], flush["id"], "ONE", 2),
        (second["id"], flush["id"], "TWO", 2),
    ]
    assert stock_row(coordinator, flush["id"], shelf["id"]) == (11, 8, 3)


def test_days_are_served_in_date_order_so_the_earliest_day_gets_scarce_stock(
    coordinator, catalog, shelf, flush, therapy_on, database, payer_id, template_id
):
    catalog.receive(flush, shelf, 4, lot="FL", expiry=in_days(100))
    _, [later] = therapy_on(6)
    other_patient = make_patient(database, payer_id)
    _, [earlier] = start_therapy(coordinator, other_patient, template_id, 2)

    run = plan(coordinator)

    assert counts(run) == (1, 1, 1, 1)
    assert held(coordinator) == [(earlier["id"], flush["id"], "FL", 4)]
    assert day(coordinator, later["id"])["missing"] == [{"item_id": flush["id"], "missing": 4}]


# --- the horizon ---------------------------------------------------------------------------------


def test_the_default_horizon_is_14_days_with_today_as_the_first(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 50, lot="FL", expiry=in_days(100))
    _, [first, last, beyond] = therapy_on(0, 13, 14)

    run = plan(coordinator)

    assert (run["days_considered"], run["horizon_end"]) == (2, iso(in_days(13)))
    assert [day(coordinator, d["id"])["status"] for d in (first, last, beyond)] == [
        "reserved",
        "reserved",
        "scheduled",
    ]


def test_a_longer_horizon_reaches_further(coordinator, catalog, shelf, flush, therapy_on):
    catalog.receive(flush, shelf, 50, lot="FL", expiry=in_days(200))
    _, days = therapy_on(0, 30, 89, 90)

    run = plan(coordinator, horizon_days=90)

    assert (run["days_fully_reserved"], run["horizon_end"]) == (3, iso(in_days(89)))
    assert [day(coordinator, d["id"])["status"] for d in days] == [
        "reserved",
        "reserved",
        "reserved",
        "scheduled",
    ]


def test_a_one_day_horizon_plans_today_only(coordinator, catalog, shelf, flush, therapy_on):
    catalog.receive(flush, shelf, 50, lot="FL", expiry=in_days(100))
    _, [today_day, tomorrow] = therapy_on(0, 1)

    run = plan(coordinator, horizon_days=1)

    assert (run["days_fully_reserved"], run["horizon_end"]) == (1, iso(TODAY))
    assert held(coordinator) == [(today_day["id"], flush["id"], "FL", 4)]
    assert day(coordinator, tomorrow["id"])["status"] == "scheduled"


@pytest.mark.parametrize("horizon_days", [0, 91, -1, "14", 14.5, True, None])
def test_a_horizon_outside_1_to_90_whole_days_is_refused(coordinator, horizon_days):
    body = problem(coordinator.post("/planning/run", {"horizon_days": horizon_days}), 422)
    assert list(body["errors"]) == ["horizon_days"]


def test_an_unknown_field_in_a_run_is_refused(coordinator):
    body = problem(coordinator.post("/planning/run", {"horizon": 14}), 422)
    assert list(body["errors"]) == ["horizon"]


# --- where stock may come from -------------------------------------------------------------------


def test_a_run_for_one_site_plans_only_that_sites_days_from_that_sites_stock(
    database, coordinator, catalog, shelf, flush, payer_id, template_id, therapy_on
):
    other_shelf = catalog.location(kind="storage", site="SITE2")
    catalog.receive(flush, shelf, 10, lot="S1", expiry=in_days(100))
    catalog.receive(flush, other_shelf, 10, lot="S2", expiry=in_days(50))
    _, [here] = therapy_on(1)
    elsewhere = make_patient(database, payer_id, site="SITE2")
    _, [there] = start_therapy(coordinator, elsewhere, template_id, 1)

    run = plan(coordinator, site="SITE2")

    assert counts(run) == (1, 0, 1, 0)
    [reservation] = all_pages(coordinator, "/reservations", status="active")
    assert (reservation["infusion_day_id"], reservation["lot"], reservation["location_id"]) == (
        there["id"],
        "S2",
        other_shelf["id"],
    )
    assert day(coordinator, here["id"])["status"] == "scheduled"

    plan(coordinator)
    assert held(coordinator, infusion_day_id=here["id"]) == [(here["id"], flush["id"], "S1", 4)]


def test_stock_at_another_site_is_never_reserved(coordinator, catalog, flush, therapy_on):
    other_shelf = catalog.location(kind="storage", site="SITE2")
    catalog.receive(flush, other_shelf, 10, lot="S2", expiry=in_days(100))
    _, [only] = therapy_on(1)

    assert counts(plan(coordinator)) == (0, 1, 0, 1)
    assert day(coordinator, only["id"])["missing"] == [{"item_id": flush["id"], "missing": 4}]
    assert stock_row(coordinator, flush["id"], other_shelf["id"]) == (10, 0, 10)


def test_quarantined_stock_is_not_reserved(coordinator, catalog, flush, therapy_on):
    quarantine = catalog.location(kind="quarantine", site="SITE1")
    catalog.receive(flush, quarantine, 10, lot="HELD", expiry=in_days(100))
    _, [only] = therapy_on(1)

    run = plan(coordinator)

    assert counts(run) == (0, 1, 0, 1)
    assert run["short"] == [{"infusion_day_id": only["id"], "item_id": flush["id"], "missing": 4}]
    assert held(coordinator) == []
    assert stock_row(coordinator, flush["id"], quarantine["id"]) == (10, 0, 10)


@pytest.mark.parametrize("kind", ["staging", "cleaning", "vehicle"])
def test_stock_moved_out_of_storage_is_not_reserved(
    warehouse, coordinator, catalog, shelf, flush, therapy_on, kind
):
    location = catalog.location(kind=kind, site="SITE1")
    catalog.receive(flush, shelf, 10, lot="HELD", expiry=in_days(100))
    line = {
        "item_id": flush["id"],
        "lot": "HELD",
        "quantity": 10,
        "from_location_id": shelf["id"],
        "to_location_id": location["id"],
    }
    ok(warehouse.post("/transfers", {"lines": [line]}), 201)
    _, [only] = therapy_on(1)

    run = plan(coordinator)

    assert counts(run) == (0, 1, 0, 1)
    assert run["short"] == [{"infusion_day_id": only["id"], "item_id": flush["id"], "missing": 4}]
    assert held(coordinator) == []
    assert stock_row(coordinator, flush["id"], location["id"]) == (10, 0, 10)


def test_quarantined_stock_is_skipped_in_favour_of_storage_stock(
    coordinator, catalog, shelf, flush, therapy_on
):
    quarantine = catalog.location(kind="quarantine", site="SITE1")
    catalog.receive(flush, quarantine, 10, lot="BAD", expiry=in_days(20))
    catalog.receive(flush, shelf, 10, lot="GOOD", expiry=in_days(200))
    _, [only] = therapy_on(1)

    plan(coordinator)

    assert held(coordinator) == [(only["id"], flush["id"], "GOOD", 4)]


# --- course equipment ----------------------------------------------------------------------------


@pytest.fixture
def pump_template(database, flush, pump) -> int:
    return make_template(database, lines=[(flush["id"], 4)], equipment=[(pump["id"], 1)])


def pump_reservations(api: Api, therapy_id: int, pump: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = all_pages(api, "/reservations", therapy_id=therapy_id, item_id=pump["id"])
    return [(r["serial"], r["infusion_day_id"], r["status"], r["quantity"]) for r in rows]


def test_course_equipment_is_reserved_once_per_therapy(
    database, coordinator, catalog, shelf, flush, pump, patient_id, pump_template
):
    catalog.receive(flush, shelf, 20, lot="FL", expiry=in_days(100))
    catalog.receive(pump, shelf, 2, serials=["PUMP-A", "PUMP-B"])
    therapy, _ = start_therapy(coordinator, patient_id, pump_template, 1, 8)

    run = plan(coordinator)

    assert (run["equipment_reserved"], run["equipment_short"], run["reserved_lines"]) == (1, 0, 3)
    assert pump_reservations(coordinator, therapy["id"], pump) == [("PUMP-A", None, "active", 1)]
    assert serial_status(database, pump["id"], "PUMP-A") == "reserved"
    assert serial_status(database, pump["id"], "PUMP-B") == "available"
    assert stock_row(coordinator, pump["id"], shelf["id"]) == (2, 1, 1)

    again = plan(coordinator)
    assert (again["equipment_reserved"], again["reserved_lines"]) == (0, 0)
    assert len(pump_reservations(coordinator, therapy["id"], pump)) == 1


def test_course_equipment_is_not_reserved_again_when_a_short_day_is_replanned(
    coordinator, catalog, shelf, flush, pump, patient_id, pump_template
):
    catalog.receive(flush, shelf, 4, lot="FL", expiry=in_days(100))
    catalog.receive(pump, shelf, 2, serials=["PUMP-A", "PUMP-B"])
    therapy, [_, second] = start_therapy(coordinator, patient_id, pump_template, 1, 8)
    assert plan(coordinator)["equipment_reserved"] == 1

    catalog.receive(flush, shelf, 4, lot="FL2", expiry=in_days(100))
    again = plan(coordinator)

    assert (again["days_considered"], again["days_fully_reserved"]) == (1, 1)
    assert (again["equipment_reserved"], again["reserved_lines"]) == (0, 1)
    assert pump_reservations(coordinator, therapy["id"], pump) == [("PUMP-A", None, "active", 1)]
    assert day(coordinator, second["id"])["status"] == "reserved"


def test_a_pump_overdue_for_maintenance_is_not_reserved(
    database, coordinator, catalog, shelf, flush, pump, patient_id, pump_template
):
    catalog.receive(flush, shelf, 20, lot="FL", expiry=in_days(100))
    catalog.receive(pump, shelf, 2, serials=["PUMP-A", "PUMP-B"])
    set_pm_due(database, pump["id"], "PUMP-A", in_days(-1))
    set_pm_due(database, pump["id"], "PUMP-B", TODAY)
    therapy, _ = start_therapy(coordinator, patient_id, pump_template, 1)

    run = plan(coordinator)

    assert (run["equipment_reserved"], run["equipment_short"]) == (1, 0)
    assert pump_reservations(coordinator, therapy["id"], pump) == [("PUMP-B", None, "active", 1)]
    assert serial_status(database, pump["id"], "PUMP-A") == "available"


def test_with_only_an_overdue_pump_the_course_equipment_is_short(
    database, coordinator, catalog, shelf, flush, pump, patient_id, pump_template
):
    catalog.receive(flush, shelf, 20, lot="FL", expiry=in_days(100))
    catalog.receive(pump, shelf, 1, serials=["PUMP-A"])
    set_pm_due(database, pump["id"], "PUMP-A", in_days(-30))
    therapy, _ = start_therapy(coordinator, patient_id, pump_template, 1)

    run = plan(coordinator)

    assert (run["equipment_reserved"], run["equipment_short"]) == (0, 1)
    assert (run["reserved_lines"], run["short_lines"]) == (1, 1)
    assert pump_reservations(coordinator, therapy["id"], pump) == []
    assert stock_row(coordinator, pump["id"], shelf["id"]) == (1, 0, 1)


def test_a_pump_at_another_site_is_not_reserved(
    coordinator, catalog, shelf, flush, pump, patient_id, pump_template
):
    catalog.receive(flush, shelf, 20, lot="FL", expiry=in_days(100))
    catalog.receive(pump, catalog.location(site="SITE2"), 1, serials=["PUMP-A"])
    start_therapy(coordinator, patient_id, pump_template, 1)

    run = plan(coordinator)

    assert (run["equipment_reserved"], run["equipment_short"]) == (0, 1)


# --- reserving one day ---------------------------------------------------------------------------


def test_reserving_one_day_reserves_that_day_only(coordinator, catalog, shelf, flush, therapy_on):
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    _, [first, second] = therapy_on(1, 3)

    result = ok(coordinator.post(f"/infusion-days/{second['id']}/reserve"))

    assert counts(result) == (1, 0, 1, 0)
    assert result["days_considered"] == 1
    assert held(coordinator) == [(second["id"], flush["id"], "FL", 4)]
    assert day(coordinator, first["id"])["status"] == "scheduled"
    assert day(coordinator, second["id"])["status"] == "reserved"


def test_reserving_a_reserved_day_again_reserves_nothing_new(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    _, [only] = therapy_on(1)
    ok(coordinator.post(f"/infusion-days/{only['id']}/reserve"))

    again = ok(coordinator.post(f"/infusion-days/{only['id']}/reserve"))

    assert counts(again) == (0, 0, 0, 0)
    assert held(coordinator) == [(only["id"], flush["id"], "FL", 4)]


def test_a_scheduled_day_that_already_holds_its_supplies_is_not_given_them_twice(
    coordinator, database, catalog, shelf, flush, therapy_on
):
    """The draft made before the locks takes a scheduled day to hold nothing yet (it saves a
    read per request); the check under the locks reads what the day really holds and drafts
    it again."""
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    _, [only] = therapy_on(1)
    ok(coordinator.post(f"/infusion-days/{only['id']}/reserve"))
    set_day_status(database, only["id"], InfusionDayStatus.SCHEDULED)

    again = ok(coordinator.post(f"/infusion-days/{only['id']}/reserve"))

    assert counts(again) == (0, 0, 1, 0)
    assert held(coordinator) == [(only["id"], flush["id"], "FL", 4)]
    assert stock_row(coordinator, flush["id"], shelf["id"]) == (10, 4, 6)
    assert day(coordinator, only["id"])["status"] == "reserved"


def test_reserving_a_reserved_day_of_a_course_with_equipment_reserves_nothing_new(
    coordinator, catalog, shelf, flush, pump, patient_id, pump_template
):
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    catalog.receive(pump, shelf, 1, serials=["PUMP-A"])
    therapy, [only] = start_therapy(coordinator, patient_id, pump_template, 1)
    first = ok(coordinator.post(f"/infusion-days/{only['id']}/reserve"))
    assert (first["reserved_lines"], first["equipment_reserved"]) == (2, 1)

    again = ok(coordinator.post(f"/infusion-days/{only['id']}/reserve"))

    assert counts(again) == (0, 0, 0, 0)
    assert (again["equipment_reserved"], again["equipment_short"]) == (0, 0)
    assert pump_reservations(coordinator, therapy["id"], pump) == [("PUMP-A", None, "active", 1)]


def test_reserving_a_day_beyond_the_horizon_is_allowed(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    _, [far] = therapy_on(60)

    assert counts(ok(coordinator.post(f"/infusion-days/{far['id']}/reserve"))) == (1, 0, 1, 0)


def test_reserving_a_short_day_reports_what_it_lacks(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 1, lot="FL", expiry=in_days(100))
    _, [only] = therapy_on(1)

    result = ok(coordinator.post(f"/infusion-days/{only['id']}/reserve"))

    assert counts(result) == (1, 1, 0, 1)
    assert result["short"] == [
        {"infusion_day_id": only["id"], "item_id": flush["id"], "missing": 3}
    ]


def test_reserving_a_cancelled_day_is_a_conflict(coordinator, catalog, shelf, flush, therapy_on):
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    _, [only] = therapy_on(1)
    ok(coordinator.patch(f"/infusion-days/{only['id']}", {"status": "cancelled"}))

    body = problem(coordinator.post(f"/infusion-days/{only['id']}/reserve"), 409)

    assert "cancelled" in body["detail"]
    assert held(coordinator) == []


def test_reserving_a_packed_day_is_a_conflict(database, coordinator, therapy_on):
    _, [only] = therapy_on(1)
    set_day_status(database, only["id"], InfusionDayStatus.PACKED)
    assert (
        "packed" in problem(coordinator.post(f"/infusion-days/{only['id']}/reserve"), 409)["detail"]
    )


def test_reserving_an_unknown_day_is_not_found(coordinator):
    problem(coordinator.post("/infusion-days/999999/reserve"), 404)


# --- the reservations list -----------------------------------------------------------------------


def test_reservations_filter_by_day_item_lot_status_and_therapy(
    database, coordinator, catalog, shelf, flush, patient_id
):
    filters = catalog.item(tracking="lot", category="filter")
    catalog.receive(flush, shelf, 5, lot="A", expiry=in_days(60))
    catalog.receive(flush, shelf, 10, lot="B", expiry=in_days(90))
    catalog.receive(filters, shelf, 10, lot="F", expiry=in_days(90))
    template = make_template(database, lines=[(flush["id"], 4), (filters["id"], 1)])
    therapy, [d1, d2] = start_therapy(coordinator, patient_id, template, 1, 2)
    plan(coordinator)
    ok(coordinator.patch(f"/infusion-days/{d2['id']}", {"status": "cancelled"}))

    def rows(**params: Any) -> list[tuple[Any, ...]]:
        found = all_pages(coordinator, "/reservations", **params)
        return [
            (r["infusion_day_id"], r["item_id"], r["lot"], r["quantity"], r["status"])
            for r in found
        ]

    everything = rows()
    assert sorted(everything) == sorted(
        [
            (d1["id"], flush["id"], "A", 4, "active"),
            (d1["id"], filters["id"], "F", 1, "active"),
            (d2["id"], flush["id"], "A", 1, "released"),
            (d2["id"], flush["id"], "B", 3, "released"),
            (d2["id"], filters["id"], "F", 1, "released"),
        ]
    )
    assert sorted(rows(infusion_day_id=d1["id"])) == sorted(
        [(d1["id"], flush["id"], "A", 4, "active"), (d1["id"], filters["id"], "F", 1, "active")]
    )
    assert sorted(rows(item_id=filters["id"])) == [
        (d1["id"], filters["id"], "F", 1, "active"),
        (d2["id"], filters["id"], "F", 1, "released"),
    ]
    assert sorted(rows(lot="A")) == [
        (d1["id"], flush["id"], "A", 4, "active"),
        (d2["id"], flush["id"], "A", 1, "released"),
    ]
    assert rows(lot="B") == [(d2["id"], flush["id"], "B", 3, "released")]
    assert len(rows(status="released")) == 3
    assert len(rows(status="active")) == 2
    assert rows(item_id=flush["id"], status="active") == [(d1["id"], flush["id"], "A", 4, "active")]
    assert len(rows(therapy_id=therapy["id"])) == 5
    assert rows(therapy_id=therapy["id"] + 1000) == []
    assert rows(lot="NOPE") == []


def test_a_reservation_row_names_its_therapy_lot_expiry_and_location(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    therapy, [only] = therapy_on(1)
    plan(coordinator)

    [row] = all_pages(coordinator, "/reservations")

    assert {
        key: row[key]
        for key in (
            "therapy_id",
            "infusion_day_id",
            "item_id",
            "lot",
            "expiry",
            "serial",
            "location_id",
            "quantity",
            "status",
            "released_at",
            "release_reason",
        )
    } == {
        "therapy_id": therapy["id"],
        "infusion_day_id": only["id"],
        "item_id": flush["id"],
        "lot": "FL",
        "expiry": iso(in_days(100)),
        "serial": None,
        "location_id": shelf["id"],
        "quantity": 4,
        "status": "active",
        "released_at": None,
        "release_reason": None,
    }


def test_an_unknown_reservation_status_filter_is_refused(coordinator):
    assert list(problem(coordinator.get("/reservations", status="held"), 422)["errors"]) == [
        "status"
    ]


# --- the ledger guards reserved units ------------------------------------------------------------


@pytest.fixture
def eight_reserved(database, coordinator, catalog, shelf, flush, patient_id):
    """Ten flushes in lot FL on the shelf, eight of them reserved for one infusion day."""
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    template = make_template(database, lines=[(flush["id"], 8)])
    start_therapy(coordinator, patient_id, template, 1)
    plan(coordinator)
    assert stock_row(coordinator, flush["id"], shelf["id"]) == (10, 8, 2)


def test_a_transfer_cannot_take_reserved_units(warehouse, catalog, shelf, flush, eight_reserved):
    other_shelf = catalog.location()
    line = {
        "item_id": flush["id"],
        "lot": "FL",
        "quantity": 3,
        "from_location_id": shelf["id"],
        "to_location_id": other_shelf["id"],
    }

    body = problem(warehouse.post("/transfers", {"lines": [line]}), 409)

    assert "reserved" in body["detail"]
    assert (body["available"], body["reserved"], body["requested"]) == (2, 8, 3)
    assert stock_row(warehouse, flush["id"], shelf["id"]) == (10, 8, 2)
    ok(warehouse.post("/transfers", {"lines": [dict(line, quantity=2)]}), 201)
    assert stock_row(warehouse, flush["id"], shelf["id"]) == (8, 8, 0)


def test_an_adjustment_cannot_take_reserved_units(warehouse, shelf, flush, eight_reserved):
    line = {"item_id": flush["id"], "lot": "FL", "location_id": shelf["id"], "quantity_delta": -3}

    body = problem(warehouse.post("/adjustments", {"reason": "damaged", "lines": [line]}), 409)

    assert "reserved" in body["detail"]
    assert (body["available"], body["reserved"]) == (2, 8)
    assert stock_row(warehouse, flush["id"], shelf["id"]) == (10, 8, 2)


def test_a_reserved_pump_cannot_be_transferred(
    warehouse, coordinator, catalog, shelf, flush, pump, patient_id, pump_template
):
    catalog.receive(flush, shelf, 4, lot="FL", expiry=in_days(100))
    catalog.receive(pump, shelf, 1, serials=["PUMP-A"])
    start_therapy(coordinator, patient_id, pump_template, 1)
    plan(coordinator)
    line = {
        "item_id": pump["id"],
        "serial": "PUMP-A",
        "quantity": 1,
        "from_location_id": shelf["id"],
        "to_location_id": catalog.location()["id"],
    }

    body = problem(warehouse.post("/transfers", {"lines": [line]}), 409)

    assert "reserved" in body["detail"]
    assert stock_row(warehouse, pump["id"], shelf["id"]) == (1, 1, 0)


# --- shortages and reorder suggestions -----------------------------------------------------------


def test_shortages_compare_unreserved_demand_with_available_stock(
    database, coordinator, catalog, shelf, flush, gloves, patient_id
):
    catalog.receive(flush, shelf, 5, lot="FL", expiry=in_days(100))
    catalog.receive(gloves, shelf, 50)
    template = make_template(database, lines=[(flush["id"], 4), (gloves["id"], 2)])
    start_therapy(coordinator, patient_id, template, 1, 3, 20)

    before = ok(coordinator.get("/shortages"))["items"]

    assert before == [
        {
            "item_id": flush["id"],
            "demand": 8,
            "available": 5,
            "shortfall": 3,
            "first_short_date": iso(in_days(3)),
        },
        {
            "item_id": gloves["id"],
            "demand": 4,
            "available": 50,
            "shortfall": 0,
            "first_short_date": None,
        },
    ]

    plan(coordinator)
    after = ok(coordinator.get("/shortages"))["items"]

    assert after == [
        {
            "item_id": flush["id"],
            "demand": 3,
            "available": 0,
            "shortfall": 3,
            "first_short_date": iso(in_days(3)),
        }
    ]


def test_shortages_look_as_far_as_the_horizon_asked_for(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 4, lot="FL", expiry=in_days(100))
    therapy_on(1, 20)

    assert [row["shortfall"] for row in ok(coordinator.get("/shortages"))["items"]] == [0]
    [row] = ok(coordinator.get("/shortages", horizon_days=30))["items"]
    assert (row["demand"], row["shortfall"], row["first_short_date"]) == (8, 4, iso(in_days(20)))


def test_shortages_can_be_limited_to_a_site(coordinator, catalog, shelf, flush, therapy_on):
    catalog.receive(flush, shelf, 1, lot="FL", expiry=in_days(100))
    therapy_on(1)

    assert ok(coordinator.get("/shortages", site="SITE2"))["items"] == []
    [row] = ok(coordinator.get("/shortages", site="SITE1"))["items"]
    assert (row["demand"], row["available"], row["shortfall"]) == (4, 1, 3)


@pytest.mark.parametrize("horizon_days", ["0", "91", "soon"])
def test_a_shortage_horizon_outside_1_to_90_is_refused(coordinator, horizon_days):
    body = problem(coordinator.get("/shortages", horizon_days=horizon_days), 422)
    assert list(body["errors"]) == ["horizon_days"]


def test_reorder_suggestions_order_whole_multiples_to_reach_the_reorder_point(
    coordinator, catalog, shelf, therapy_on, database, patient_id
):
    low = catalog.item(tracking="lot", category="flush", reorder_point=20, reorder_quantity=12)
    plenty = catalog.item(tracking="lot", category="flush", reorder_point=5, reorder_quantity=10)
    never = catalog.item(tracking="none", category="ppe")
    catalog.receive(low, shelf, 10, lot="LOW", expiry=in_days(100))
    catalog.receive(plenty, shelf, 50, lot="PL", expiry=in_days(100))
    template = make_template(database, lines=[(low["id"], 4), (plenty["id"], 1), (never["id"], 1)])
    start_therapy(coordinator, patient_id, template, 2)

    suggestions = ok(coordinator.get("/reorder-suggestions"))["items"]

    assert suggestions == [
        {
            "item_id": low["id"],
            "sku": low["sku"],
            "available": 10,
            "demand": 4,
            "projected_available": 6,
            "reorder_point": 20,
            "reorder_quantity": 12,
            "suggested_quantity": 24,
        }
    ]
    assert suggestions[0]["suggested_quantity"] % 12 == 0


def test_an_item_with_no_stock_and_no_reorder_multiple_is_suggested_its_deficit(
    coordinator, catalog
):
    item = catalog.item(tracking="none", category="ppe", reorder_point=7)
    [row] = ok(coordinator.get("/reorder-suggestions"))["items"]
    assert (row["item_id"], row["available"], row["suggested_quantity"]) == (item["id"], 0, 7)


# --- who may plan --------------------------------------------------------------------------------


def test_finance_may_read_reservations_shortages_and_suggestions(
    as_role, coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    _, [only] = therapy_on(1)
    plan(coordinator)
    finance = as_role(Role.FINANCE)

    assert held(finance) == [(only["id"], flush["id"], "FL", 4)]
    assert ok(finance.get("/shortages"))["items"] == []
    assert ok(finance.get("/reorder-suggestions"))["items"] == []


def test_finance_may_not_run_planning_or_reserve_a_day(as_role, catalog, shelf, flush, therapy_on):
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    _, [only] = therapy_on(1)
    finance = as_role(Role.FINANCE)

    problem(finance.post("/planning/run", {}), 403)
    problem(finance.post(f"/infusion-days/{only['id']}/reserve"), 403)
    assert held(finance) == []


def test_a_driver_may_not_plan_or_read_reservations(as_role, therapy_on):
    _, [only] = therapy_on(1)
    driver = as_role(Role.DRIVER)

    problem(driver.post("/planning/run", {}), 403)
    problem(driver.post(f"/infusion-days/{only['id']}/reserve"), 403)
    problem(driver.get("/reservations"), 403)
    problem(driver.get("/shortages"), 403)
    problem(driver.get("/reorder-suggestions"), 403)


@pytest.mark.parametrize("role", [Role.WAREHOUSE, Role.ADMIN])
def test_warehouse_and_admin_may_run_planning(as_role, catalog, shelf, flush, therapy_on, role):
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    therapy_on(1)
    assert counts(plan(as_role(role))) == (1, 0, 1, 0)


def test_a_run_without_a_token_is_unauthorized(app):
    response = app.test_client().post("/api/v1/planning/run", json={})
    assert response.status_code == 401


def test_a_replayed_run_answers_the_first_result_and_reserves_nothing_more(
    coordinator, catalog, shelf, flush, therapy_on
):
    catalog.receive(flush, shelf, 10, lot="FL", expiry=in_days(100))
    therapy_on(1)
    key = {"Idempotency-Key": "plan-run-1"}
    first = ok(coordinator.post("/planning/run", {"horizon_days": 14}, headers=key))

    replay = coordinator.post("/planning/run", {"horizon_days": 14}, headers=key)

    assert ok(replay) == first
    assert counts(first) == (1, 0, 1, 0)
    assert len(all_pages(coordinator, "/reservations")) == 1
