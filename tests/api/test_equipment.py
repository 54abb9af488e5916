"""Equipment (serialized units): the list and its filters, one unit with its ETag, lifecycle
transitions (legal, illegal, stale, with pm_due), retiring out of stock, out of a therapy's
reservation and not out of an open kit, maintenance blocking planning and packing, the
unit's history, roles and unknown ids.

The scenario is kit_builders.Pharmacy: two serialized pumps in bin A of SITE1, a patient on a
template that needs one pump per course. No endpoint makes a unit dirty or sends it to a
patient yet (deliveries and returns come later), so those states are set through the ORM.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from sqlalchemy import select

from inventory.catalog.models import Location
from inventory.db import Database
from inventory.equipment.models import EquipmentEvent
from inventory.kits.models import Kit, KitStatus
from inventory.ledger.models import (
    DocumentType,
    EquipmentStatus,
    MovementType,
    Party,
    Reservation,
    ReservationStatus,
    SerialUnit,
    StockDocument,
)
from inventory.ledger.service import Leg, post_movements
from inventory.users.models import Role
from tests.api.kit_builders import Pharmacy, gs1, in_days
from tests.api.ledger_helpers import all_pages, stock_of
from tests.api.planning_builders import make_patient, make_payer, today
from tests.builders import Api, ok, problem

Body = dict[str, Any]
ROW = ("id", "serial", "item_id", "status", "patient_id", "pm_due")


@pytest.fixture
def coordinator(as_role) -> Api:
    return as_role(Role.COORDINATOR)


@pytest.fixture
def pharmacy(catalog, coordinator, database) -> Pharmacy:
    return Pharmacy.open(catalog, coordinator, database)


# --- helpers -----------------------------------------------------------------------------------


def units(api: Api, **filters: Any) -> list[Body]:
    return all_pages(api, "/equipment", **filters)


def unit(p: Pharmacy, serial: str) -> Body:
    [row] = [u for u in units(p.warehouse, item_id=p.pump["id"]) if u["serial"] == serial]
    return row


def statuses(p: Pharmacy) -> dict[str, str]:
    """{serial: status} of the pharmacy's pumps."""
    return {u["serial"]: u["status"] for u in units(p.warehouse, item_id=p.pump["id"])}


def move(api: Api, unit_id: int, to: str, headers: dict[str, str] | None = None, **fields: Any):
    return api.post(f"/equipment/{unit_id}/transitions", {"to": to, **fields}, headers=headers)


def moved(api: Api, unit_id: int, to: str, **fields: Any) -> Body:
    return ok(move(api, unit_id, to, **fields))


def set_unit(database: Database, unit_id: int, **values: Any) -> None:
    """Put a unit in a state no endpoint reaches yet (dirty: returns come later)."""
    session = database.session()
    try:
        row = session.get(SerialUnit, unit_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        session.commit()
    finally:
        session.close()


def put_in(database: Database, unit_id: int, status: str) -> None:
    set_unit(database, unit_id, status=EquipmentStatus(status))


def user_id(api: Api) -> int:
    return ok(api.get("/me"))["id"]


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def add_event(
    database: Database,
    unit_id: int,
    source: str,
    target: str,
    actor_id: int,
    occurred_at: datetime,
    patient_id: int | None = None,
    reason: str | None = None,
) -> None:
    """A status change as a delivery or a return (flows still to come) would log it."""
    session = database.session()
    try:
        session.add(
            EquipmentEvent(
                serial_unit_id=unit_id,
                from_status=EquipmentStatus(source),
                to_status=EquipmentStatus(target),
                patient_id=patient_id,
                occurred_at=occurred_at,
                recorded_at=occurred_at,
                actor_id=actor_id,
                reason=reason,
            )
        )
        session.commit()
    finally:
        session.close()


def deliver(
    database: Database,
    unit_id: int,
    patient_id: int,
    actor_id: int,
    on: datetime,
    kit_id: int | None = None,
) -> None:
    """What a confirmed delivery does to a unit (and to its packed kit, if given, whose units
    all go from the staging bench with it): the ledger moves it to the patient, the unit is
    at_patient with them and its log says so."""
    session = database.session()
    try:
        row = session.get(SerialUnit, unit_id)
        assert row is not None and row.location_id is not None
        location = session.get(Location, row.location_id)
        assert location is not None
        document = StockDocument(
            type=DocumentType.DELIVERY,
            site=location.site,
            reference="simulated delivery",
            actor_id=actor_id,
            kit_id=kit_id,
            occurred_at=on,
            recorded_at=on,
        )
        session.add(document)
        legs = [Leg(row.item, 1, location, Party.PATIENT, serial_unit=row)]
        if kit_id is not None:  # the whole packed kit goes, under its reservations
            legs = [
                Leg(r.item, r.quantity, location, Party.PATIENT, r.lot, r.serial_unit, held=True)
                for r in session.scalars(
                    select(Reservation).where(
                        Reservation.kit_id == kit_id,
                        Reservation.status == ReservationStatus.PICKED,
                    )
                )
            ]
        post_movements(session, document, MovementType.DELIVERY, legs)
        if kit_id is not None:
            kit = session.get(Kit, kit_id)
            assert kit is not None and kit.status is KitStatus.PACKED
            kit.status = KitStatus.DELIVERED
        session.add(
            EquipmentEvent(
                serial_unit_id=row.id,
                from_status=row.status,
                to_status=EquipmentStatus.AT_PATIENT,
                patient_id=patient_id,
                occurred_at=on,
                recorded_at=on,
                actor_id=actor_id,
                kit_id=kit_id,
                reason="delivered",
            )
        )
        row.status = EquipmentStatus.AT_PATIENT
        row.patient_id = patient_id
        session.commit()
    finally:
        session.close()


def events(history: Body) -> list[tuple[str, str, str | None]]:
    return [(e["from_status"], e["to_status"], e["reason"]) for e in history["events"]]


def pump_serial(kit: Body) -> str:
    [serial] = [line["serial"] for line in kit["lines"] if line["serial"]]
    return serial


# --- the list ----------------------------------------------------------------------------------


def test_the_list_shows_each_unit_with_its_status_place_and_maintenance_date(pharmacy):
    p = pharmacy

    rows = units(p.warehouse, item_id=p.pump["id"])

    assert [r["serial"] for r in rows] == p.serials
    for row in rows:
        assert set(ROW) <= set(row)
        assert (row["item_id"], row["status"], row["patient_id"], row["pm_due"]) == (
            p.pump["id"],
            "available",
            None,
            None,
        )
        assert (row["location_id"], row["pm_overdue"]) == (p.shelf["id"], False)
        assert row["allowed_transitions"] == ["retired"]


def test_the_list_filters_by_status_item_and_site(pharmacy, catalog):
    p = pharmacy
    pole = catalog.item(tracking="serial", category="pole")
    catalog.receive(pole, p.shelf, 1, serials=["POLE-1"])
    elsewhere = catalog.location(kind="storage", site="SITE2")
    catalog.receive(p.pump, elsewhere, 1, serials=["PUMP-SITE2"])
    dirty = unit(p, p.serials[0])
    put_in(p.database, dirty["id"], "dirty")

    def serials(**filters: Any) -> list[str]:
        return sorted(u["serial"] for u in units(p.warehouse, **filters))

    assert serials(item_id=p.pump["id"]) == sorted([*p.serials, "PUMP-SITE2"])
    assert serials(item_id=pole["id"]) == ["POLE-1"]
    assert serials(status="dirty") == [p.serials[0]]
    assert serials(status="available", item_id=p.pump["id"]) == sorted([p.serials[1], "PUMP-SITE2"])
    assert serials(site="SITE2") == ["PUMP-SITE2"]
    assert serials(site="SITE1", item_id=p.pump["id"]) == sorted(p.serials)
    assert serials(status="retired") == []


def test_a_unit_past_its_pm_due_is_flagged_overdue_and_found_by_date(pharmacy):
    p = pharmacy
    overdue, due_today = (unit(p, serial)["id"] for serial in p.serials)
    set_unit(p.database, overdue, pm_due=in_days(-1))
    set_unit(p.database, due_today, pm_due=today())

    flags = {u["id"]: (u["pm_due"], u["pm_overdue"]) for u in units(p.warehouse)}

    assert flags[overdue] == (in_days(-1).isoformat(), True)
    assert flags[due_today] == (today().isoformat(), False)
    found = units(p.warehouse, pm_due_before=today().isoformat())
    assert [u["id"] for u in found] == [overdue]


@pytest.mark.parametrize("query", [{"status": "lost"}, {"item_id": "pump"}, {"colour": "red"}])
def test_a_malformed_filter_is_invalid_input(warehouse, query):
    response = warehouse.get("/equipment", **query)
    assert response.status_code in (400, 422)
    problem(response, response.status_code)


# --- one unit ----------------------------------------------------------------------------------


def test_one_unit_is_read_with_an_etag_that_changes_with_each_move(pharmacy):
    p = pharmacy
    listed = unit(p, p.serials[0])

    response = p.warehouse.get(f"/equipment/{listed['id']}")

    assert ok(response) == listed
    first = response.headers["ETag"]
    assert first
    put_in(p.database, listed["id"], "dirty")
    dirty = p.warehouse.get(f"/equipment/{listed['id']}")
    assert dirty.headers["ETag"] != first
    answer = move(p.warehouse, listed["id"], "cleaning")
    assert ok(answer)["status"] == "cleaning"
    now = p.warehouse.get(f"/equipment/{listed['id']}")
    assert now.headers["ETag"] == answer.headers["ETag"]
    assert now.headers["ETag"] not in (first, dirty.headers["ETag"])


# --- transitions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ["cleaning", "available"],
        ["cleaning", "repair", "available"],
    ],
    ids=["cleaned", "repaired"],
)
def test_a_dirty_unit_goes_back_to_available_by_the_legal_moves(pharmacy, path):
    p = pharmacy
    unit_id = unit(p, p.serials[0])["id"]
    put_in(p.database, unit_id, "dirty")
    offered = {
        "cleaning": ["available", "repair", "retired"],
        "repair": ["available", "retired"],
        "available": ["retired"],
    }

    for target in path:
        body = moved(p.warehouse, unit_id, target, note=f"to {target}")
        assert (body["status"], body["allowed_transitions"]) == (target, offered[target])
        assert ok(p.warehouse.get(f"/equipment/{unit_id}"))["status"] == target

    assert statuses(p) == {p.serials[0]: "available", p.serials[1]: "available"}


@pytest.mark.parametrize("start", ["available", "dirty", "cleaning", "repair"])
def test_a_unit_in_the_pharmacy_may_be_retired_from_any_status(pharmacy, admin, start):
    p = pharmacy
    unit_id = unit(p, p.serials[0])["id"]
    if start != "available":
        put_in(p.database, unit_id, start)

    body = moved(admin, unit_id, "retired", note="cracked housing")

    assert (body["status"], body["location_id"], body["allowed_transitions"]) == (
        "retired",
        None,
        [],
    )
    assert stock_of(p.warehouse, p.pump["id"]) == {(p.shelf["id"], None): 1}


ILLEGAL = [
    ("available", "cleaning"),
    ("available", "repair"),
    ("available", "dirty"),
    ("available", "reserved"),
    ("available", "at_patient"),
    ("available", "available"),
    ("dirty", "available"),
    ("dirty", "repair"),
    ("cleaning", "dirty"),
    ("repair", "cleaning"),
    ("repair", "dirty"),
]


@pytest.mark.parametrize(("start", "target"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_an_illegal_move_is_a_conflict_and_changes_nothing(pharmacy, start, target):
    p = pharmacy
    unit_id = unit(p, p.serials[0])["id"]
    if start != "available":
        put_in(p.database, unit_id, start)
    before = p.warehouse.get(f"/equipment/{unit_id}")

    refused = problem(move(p.warehouse, unit_id, target, pm_due=in_days(30).isoformat()), 409)

    assert start in refused["detail"] and target in refused["detail"]
    after = p.warehouse.get(f"/equipment/{unit_id}")
    assert (after.get_json(), after.headers["ETag"]) == (before.get_json(), before.headers["ETag"])
    assert ok(p.warehouse.get(f"/equipment/{unit_id}/history"))["events"] == []


def test_a_retired_unit_moves_nowhere(pharmacy):
    p = pharmacy
    unit_id = unit(p, p.serials[0])["id"]
    moved(p.warehouse, unit_id, "retired")

    for target in ["available", "reserved", "at_patient", "dirty", "cleaning", "repair", "retired"]:
        problem(move(p.warehouse, unit_id, target), 409)

    assert unit(p, p.serials[0])["status"] == "retired"
    assert len(ok(p.warehouse.get(f"/equipment/{unit_id}/history"))["events"]) == 1


def test_a_move_with_a_stale_if_match_is_refused_and_with_the_current_one_goes_through(pharmacy):
    p = pharmacy
    unit_id = unit(p, p.serials[0])["id"]
    put_in(p.database, unit_id, "dirty")
    stale = p.warehouse.get(f"/equipment/{unit_id}").headers["ETag"]
    current = move(p.warehouse, unit_id, "cleaning", headers={"If-Match": stale}).headers["ETag"]

    problem(move(p.warehouse, unit_id, "available", headers={"If-Match": stale}), 412)

    assert unit(p, p.serials[0])["status"] == "cleaning"
    body = ok(move(p.warehouse, unit_id, "available", headers={"If-Match": current}))
    assert body["status"] == "available"


def test_pm_due_is_set_with_a_move_and_shown(pharmacy):
    p = pharmacy
    unit_id = unit(p, p.serials[0])["id"]
    put_in(p.database, unit_id, "dirty")
    due = in_days(180).isoformat()

    cleaning = moved(p.warehouse, unit_id, "cleaning", pm_due=due)
    available = moved(p.warehouse, unit_id, "available")

    assert (cleaning["pm_due"], cleaning["pm_overdue"]) == (due, False)
    assert available["pm_due"] == due  # kept by a move that does not set it
    assert (unit(p, p.serials[0])["pm_due"], unit(p, p.serials[0])["pm_overdue"]) == (due, False)
    retired = moved(p.warehouse, unit_id, "retired", pm_due=in_days(-1).isoformat())
    assert (retired["pm_due"], retired["pm_overdue"]) == (in_days(-1).isoformat(), True)


def test_a_transition_replayed_with_its_idempotency_key_moves_once(pharmacy):
    p = pharmacy
    unit_id = unit(p, p.serials[0])["id"]
    put_in(p.database, unit_id, "dirty")
    key = {"Idempotency-Key": "clean-pump-1"}

    first = ok(move(p.warehouse, unit_id, "cleaning", headers=key))
    again = ok(move(p.warehouse, unit_id, "cleaning", headers=key))

    assert again == first
    assert events(ok(p.warehouse.get(f"/equipment/{unit_id}/history"))) == [
        ("dirty", "cleaning", "transition")
    ]


@pytest.mark.parametrize(
    "body",
    [{}, {"to": "scrapped"}, {"to": "retired", "pm_due": "next week"}, {"to": "retired", "x": 1}],
    ids=["no target", "unknown status", "bad date", "unknown field"],
)
def test_a_malformed_transition_is_invalid_input(pharmacy, body):
    p = pharmacy
    unit_id = unit(p, p.serials[0])["id"]

    response = p.warehouse.post(f"/equipment/{unit_id}/transitions", body)

    assert response.status_code in (400, 422)
    problem(response, response.status_code)
    assert unit(p, p.serials[0])["status"] == "available"


# --- retiring ----------------------------------------------------------------------------------


def test_retiring_a_unit_in_stock_moves_it_to_disposal(pharmacy):
    p = pharmacy
    serial = p.serials[0]
    unit_id = unit(p, serial)["id"]
    before = {m["id"] for m in all_pages(p.warehouse, "/movements", item_id=p.pump["id"])}

    moved(p.warehouse, unit_id, "retired", note="dropped down the stairs")

    new = [
        m
        for m in all_pages(p.warehouse, "/movements", item_id=p.pump["id"])
        if m["id"] not in before
    ]
    assert [
        (m["serial"], m["quantity"], m["from"]["location_id"], m["to"]["type"], m["unit_cost"])
        for m in new
    ] == [(serial, 1, p.shelf["id"], "disposal", "900.0000")]
    assert stock_of(p.warehouse, p.pump["id"]) == {(p.shelf["id"], None): 1}
    assert statuses(p) == {serial: "retired", p.serials[1]: "available"}
    assert unit(p, serial)["location_id"] is None


def test_retiring_a_unit_reserved_for_a_therapy_releases_it_and_it_no_longer_counts(pharmacy):
    p = pharmacy
    therapy, days = p.therapy(1, 2)
    p.plan()
    [held] = all_pages(p.warehouse, "/reservations", item_id=p.pump["id"])
    assert (held["status"], held["therapy_id"]) == ("active", therapy["id"])
    serial = held["serial"]

    retired = moved(p.warehouse, unit(p, serial)["id"], "retired", note="failed self-test")

    assert retired["status"] == "retired"
    [released] = all_pages(p.warehouse, "/reservations", item_id=p.pump["id"])
    assert (released["id"], released["status"]) == (held["id"], "released")
    assert all_pages(p.warehouse, "/reservations", item_id=p.pump["id"], status="active") == []
    rows = all_pages(p.warehouse, "/stock", item_id=p.pump["id"])
    assert [(r["location_id"], r["on_hand"], r["reserved"]) for r in rows] == [
        (p.shelf["id"], 1, 0)
    ]
    # The course is a pump short again: the retired one does not cover it any more.
    refused = problem(
        p.warehouse.post(
            "/kits", {"patient_id": p.patient_id, "infusion_day_ids": [d["id"] for d in days]}
        ),
        409,
    )
    assert refused["missing"] == [{"item_id": p.pump["id"], "quantity": 1}]


def test_after_retiring_a_reserved_unit_planning_reserves_another_for_the_course(pharmacy):
    p = pharmacy
    therapy, days = p.therapy(1, 2)
    p.plan()
    [held] = all_pages(p.warehouse, "/reservations", item_id=p.pump["id"])
    moved(p.warehouse, unit(p, held["serial"])["id"], "retired")
    [spare] = [s for s in p.serials if s != held["serial"]]

    p.plan()

    active = all_pages(p.warehouse, "/reservations", item_id=p.pump["id"], status="active")
    assert [(r["serial"], r["therapy_id"]) for r in active] == [(spare, therapy["id"])]
    kit = p.build(days)
    assert pump_serial(kit) == spare


def test_a_unit_in_an_open_kit_cannot_be_retired(pharmacy):
    p = pharmacy
    _, days = p.therapy(1, 2)
    p.plan()
    kit = p.build(days)
    serial = pump_serial(kit)
    unit_id = unit(p, serial)["id"]
    before = (
        p.warehouse.get(f"/kits/{kit['id']}").get_json(),
        all_pages(p.warehouse, "/reservations"),
        all_pages(p.warehouse, "/movements"),
        units(p.warehouse),
    )

    refused = problem(move(p.warehouse, unit_id, "retired"), 409)

    assert kit["number"] in refused["detail"]
    after = (
        p.warehouse.get(f"/kits/{kit['id']}").get_json(),
        all_pages(p.warehouse, "/reservations"),
        all_pages(p.warehouse, "/movements"),
        units(p.warehouse),
    )
    assert after == before


def test_retiring_a_unit_at_a_patients_home_ends_the_stay_without_a_movement(pharmacy):
    p = pharmacy
    serial = p.serials[0]
    unit_id = unit(p, serial)["id"]
    delivered_on = in_days(-3)
    deliver(p.database, unit_id, p.patient_id, user_id(p.warehouse), at(delivered_on))
    home = unit(p, serial)
    assert (home["status"], home["patient_id"], home["location_id"]) == (
        "at_patient",
        p.patient_id,
        None,
    )
    stay = ok(p.warehouse.get(f"/equipment/{unit_id}/history"))["patients"]
    assert stay == [{"patient_id": p.patient_id, "from": delivered_on.isoformat(), "to": None}]
    movements = all_pages(p.warehouse, "/movements", item_id=p.pump["id"])

    retired = moved(p.warehouse, unit_id, "retired", note="lost by the patient")

    assert (retired["status"], retired["patient_id"]) == ("retired", None)
    assert all_pages(p.warehouse, "/movements", item_id=p.pump["id"]) == movements
    history = ok(p.warehouse.get(f"/equipment/{unit_id}/history"))
    assert history["patients"] == [
        {
            "patient_id": p.patient_id,
            "from": delivered_on.isoformat(),
            "to": today().isoformat(),
        }
    ]
    assert history["events"][-1]["patient_id"] == p.patient_id
    assert events(history) == [
        ("available", "at_patient", "delivered"),
        ("at_patient", "retired", "transition"),
    ]


def test_a_unit_at_home_from_a_delivered_kit_may_be_retired(pharmacy):
    p = pharmacy
    _, days = p.therapy(1, 2)
    p.plan()
    kit = p.build(days)
    p.pack(p.scan_all(kit))
    serial = pump_serial(kit)
    unit_id = unit(p, serial)["id"]
    deliver(p.database, unit_id, p.patient_id, user_id(p.warehouse), at(today(), 0), kit["id"])
    assert (unit(p, serial)["status"], unit(p, serial)["patient_id"]) == (
        "at_patient",
        p.patient_id,
    )
    movements = all_pages(p.warehouse, "/movements", item_id=p.pump["id"])

    retired = moved(p.warehouse, unit_id, "retired", note="lost by the patient")

    assert (retired["status"], retired["patient_id"], retired["location_id"]) == (
        "retired",
        None,
        None,
    )
    assert all_pages(p.warehouse, "/movements", item_id=p.pump["id"]) == movements
    assert all_pages(p.warehouse, "/reservations", item_id=p.pump["id"], status="picked") == []
    history = ok(p.warehouse.get(f"/equipment/{unit_id}/history"))
    assert history["patients"] == [
        {"patient_id": p.patient_id, "from": today().isoformat(), "to": today().isoformat()}
    ]
    assert [(k["kit_id"], k["status"]) for k in history["kits"]] == [(kit["id"], "delivered")]


# --- preventive maintenance --------------------------------------------------------------------


def test_a_unit_past_its_pm_due_is_not_reserved_and_cannot_be_scanned_into_a_kit(pharmacy):
    p = pharmacy
    overdue, fine = p.serials
    overdue_id = unit(p, overdue)["id"]
    put_in(p.database, overdue_id, "dirty")
    moved(p.warehouse, overdue_id, "cleaning")
    came_back = moved(p.warehouse, overdue_id, "available", pm_due=in_days(-1).isoformat())
    assert (came_back["status"], came_back["pm_overdue"]) == ("available", True)
    _, days = p.therapy(1, 2)

    run = p.plan()

    assert (run["equipment_reserved"], run["equipment_short"]) == (1, 0)
    assert statuses(p) == {overdue: "available", fine: "reserved"}
    kit = p.build(days)
    assert pump_serial(kit) == fine
    refused = problem(
        p.warehouse.post(f"/kits/{kit['id']}/scans", {"barcode": gs1(p.pump, serial=overdue)}),
        409,
    )
    assert refused["reason"] == "pm_overdue"
    lines = ok(p.warehouse.get(f"/kits/{kit['id']}"))["lines"]
    assert [(line["serial"], line["packed_quantity"]) for line in lines if line["serial"]] == [
        (fine, 0)
    ]
    assert statuses(p) == {overdue: "available", fine: "reserved"}


# --- history -----------------------------------------------------------------------------------


def test_the_history_lists_the_kits_the_unit_was_in(pharmacy):
    p = pharmacy
    _, days = p.therapy(1, 2)
    p.plan()
    kit = p.build(days)
    planned = pump_serial(kit)
    [spare] = [s for s in p.serials if s != planned]
    p.scan(kit, item_id=p.pump["id"], serial=spare)  # the spare swaps in for the planned pump

    def kits_of(serial: str) -> list[Body]:
        return ok(p.warehouse.get(f"/equipment/{unit(p, serial)['id']}/history"))["kits"]

    expected = {
        "kit_id": kit["id"],
        "number": kit["number"],
        "patient_id": p.patient_id,
        "status": "open",
        "first_day": in_days(1).isoformat(),
        "last_day": in_days(2).isoformat(),
    }
    assert kits_of(planned) == [{**expected, "in_kit": False}]
    assert kits_of(spare) == [{**expected, "in_kit": True}]
    ok(p.warehouse.post(f"/kits/{kit['id']}/cancel", {}))
    assert kits_of(spare) == [{**expected, "status": "cancelled", "in_kit": False}]
    assert ok(p.warehouse.get(f"/equipment/{unit(p, planned)['id']}/history"))["events"] == []


def test_the_history_lists_the_transitions_in_order_with_who_made_them(pharmacy, admin):
    p = pharmacy
    unit_id = unit(p, p.serials[0])["id"]
    put_in(p.database, unit_id, "dirty")
    steps = [
        (p.warehouse, "cleaning", "wiped down"),
        (admin, "repair", "occlusion alarm"),
        (p.warehouse, "available", None),
        (admin, "retired", "end of life"),
    ]
    for api, target, note in steps:
        moved(api, unit_id, target, note=note)

    history = ok(p.warehouse.get(f"/equipment/{unit_id}/history"))

    assert [
        (e["from_status"], e["to_status"], e["note"], e["reason"], e["actor_id"], e["patient_id"])
        for e in history["events"]
    ] == [
        ("dirty", "cleaning", "wiped down", "transition", user_id(p.warehouse), None),
        ("cleaning", "repair", "occlusion alarm", "transition", user_id(admin), None),
        ("repair", "available", None, "transition", user_id(p.warehouse), None),
        ("available", "retired", "end of life", "transition", user_id(admin), None),
    ]
    stamps = [datetime.fromisoformat(e["occurred_at"]) for e in history["events"]]
    assert stamps == sorted(stamps)
    assert all(stamp.utcoffset() is not None for stamp in stamps)
    assert history["unit"] == unit(p, p.serials[0])
    assert (history["patients"], history["kits"]) == ([], [])


def test_the_history_gives_each_patient_the_unit_stayed_with_and_when(pharmacy):
    p = pharmacy
    unit_id = unit(p, p.serials[0])["id"]
    actor = user_id(p.warehouse)
    other = make_patient(p.database, make_payer(p.database))
    first_in, first_out, second_in, second_out = (in_days(n) for n in (-60, -41, -30, -2))
    # Logged out of order: the history sorts by when things happened.
    logged = [
        ("at_patient", "dirty", second_out, other, "returned"),
        ("reserved", "at_patient", first_in, p.patient_id, "delivered"),
        ("reserved", "at_patient", second_in, other, "delivered"),
        ("at_patient", "dirty", first_out, p.patient_id, "returned"),
    ]
    for source, target, on, patient_id, reason in logged:
        add_event(p.database, unit_id, source, target, actor, at(on), patient_id, reason)
    put_in(p.database, unit_id, "dirty")
    moved(p.warehouse, unit_id, "cleaning")

    history = ok(p.warehouse.get(f"/equipment/{unit_id}/history"))

    assert history["patients"] == [
        {"patient_id": p.patient_id, "from": first_in.isoformat(), "to": first_out.isoformat()},
        {"patient_id": other, "from": second_in.isoformat(), "to": second_out.isoformat()},
    ]
    assert events(history) == [
        ("reserved", "at_patient", "delivered"),
        ("at_patient", "dirty", "returned"),
        ("reserved", "at_patient", "delivered"),
        ("at_patient", "dirty", "returned"),
        ("dirty", "cleaning", "transition"),
    ]
    assert [e["patient_id"] for e in history["events"]] == [
        p.patient_id,
        p.patient_id,
        other,
        other,
        None,
    ]


# --- roles and unknown ids ---------------------------------------------------------------------


def test_finance_reads_equipment_but_may_not_move_it(pharmacy, as_role):
    p = pharmacy
    finance = as_role(Role.FINANCE)
    unit_id = unit(p, p.serials[0])["id"]

    assert {u["serial"] for u in units(finance, item_id=p.pump["id"])} == set(p.serials)
    assert ok(finance.get(f"/equipment/{unit_id}"))["id"] == unit_id
    assert ok(finance.get(f"/equipment/{unit_id}/history"))["unit"]["id"] == unit_id
    problem(move(finance, unit_id, "retired"), 403)
    problem(move(as_role(Role.COORDINATOR), unit_id, "retired"), 403)
    assert unit(p, p.serials[0])["status"] == "available"


def test_a_driver_may_not_read_equipment(pharmacy, as_role):
    p = pharmacy
    driver = as_role(Role.DRIVER)
    unit_id = unit(p, p.serials[0])["id"]

    problem(driver.get("/equipment"), 403)
    problem(driver.get(f"/equipment/{unit_id}"), 403)
    problem(driver.get(f"/equipment/{unit_id}/history"), 403)
    problem(move(driver, unit_id, "retired"), 403)


@pytest.mark.parametrize("call", ["read", "history", "transition"])
def test_an_unknown_unit_is_not_found(warehouse, call):
    missing = 987654
    response = {
        "read": lambda: warehouse.get(f"/equipment/{missing}"),
        "history": lambda: warehouse.get(f"/equipment/{missing}/history"),
        "transition": lambda: move(warehouse, missing, "retired"),
    }[call]()

    assert str(missing) in problem(response, 404)["detail"]
