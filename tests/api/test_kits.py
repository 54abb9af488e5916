"""Kits: building from reserved days, scanning (counting, swapping lots and pumps, every
refusal reason), packing, cancelling, ETags and the printable pick list / delivery ticket.

The scenario is kit_builders.Pharmacy: a lot-tracked flush (4 a day) in bin A, gloves (2 a
day) in bin B, two serialized pumps (1 per course) in bin A, a staging and a quarantine area.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import select

from inventory.db import Database
from inventory.ledger.audit import ledger_discrepancies
from inventory.ledger.models import Lot
from inventory.therapies.models import InfusionDay
from inventory.users.models import Role
from tests.api.kit_builders import Pharmacy, gs1, in_days
from tests.api.ledger_helpers import all_pages, stock_of
from tests.api.planning_builders import make_patient, make_payer, set_pm_due
from tests.builders import Api, gtin_for, ok, problem

Body = dict[str, Any]


@pytest.fixture
def coordinator(as_role) -> Api:
    return as_role(Role.COORDINATOR)


@pytest.fixture
def pharmacy(catalog, coordinator, database) -> Pharmacy:
    return Pharmacy.open(catalog, coordinator, database)


@pytest.fixture
def kit(pharmacy) -> Body:
    """An open kit for infusion days in 1 and 2 days: 8 flushes of lot A, 4 gloves, 1 pump."""
    _, days = pharmacy.therapy(1, 2)
    pharmacy.plan()
    return pharmacy.build(days)


# --- helpers -----------------------------------------------------------------------------------


def read(p: Pharmacy, kit: Body) -> Body:
    return ok(p.warehouse.get(f"/kits/{kit['id']}"))


def etag(p: Pharmacy, kit: Body) -> str:
    response = p.warehouse.get(f"/kits/{kit['id']}")
    assert response.status_code == 200
    return response.headers["ETag"]


LINE = ("item_id", "lot", "serial", "location_id", "quantity", "packed_quantity")


def summary(kit: Body, item: Body | None = None) -> list[tuple[Any, ...]]:
    """(item_id, lot, serial, location_id, quantity, packed_quantity) of the lines, in order;
    only those of ``item`` if given."""
    rows = [tuple(line[key] for key in LINE) for line in kit["lines"]]
    return [row for row in rows if item is None or row[0] == item["id"]]


def post(p: Pharmacy, kit: Body, action: str, body: Body | None = None, **headers: str) -> Any:
    """POST /kits/{id}/{action} as the warehouse; ``If_Match="..."`` sends an If-Match."""
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    return p.warehouse.post(f"/kits/{kit['id']}/{action}", body or {}, headers=sent)


def where(p: Pharmacy) -> dict[tuple[str, int, str | None], int]:
    """{(item, location_id, lot): on_hand} of the flush, gloves and pump, non-zero only."""
    return {
        (name, location_id, lot): on_hand
        for name, item in (("flush", p.flush), ("gloves", p.gloves), ("pump", p.pump))
        for (location_id, lot), on_hand in stock_of(p.warehouse, item["id"]).items()
        if on_hand
    }


def iso(offset: int) -> str:
    return in_days(offset).isoformat()


def pump_serial(kit: Body) -> str:
    [serial] = [line["serial"] for line in kit["lines"] if line["serial"]]
    return serial


def reserved_of(api: Api, item_id: int) -> dict[tuple[int, str | None], int]:
    """{(location_id, lot): reserved} for an item, rows with nothing reserved left out."""
    rows = all_pages(api, "/stock", item_id=item_id, include_empty="true")
    return {(r["location_id"], r["lot"]): r["reserved"] for r in rows if r["reserved"]}


def held(api: Api, **filters: Any) -> Counter[tuple[Any, ...]]:
    """(infusion_day_id, lot, location_id, quantity, packed_quantity) of active reservations."""
    rows = all_pages(api, "/reservations", status="active", **filters)
    return Counter(
        (r["infusion_day_id"], r["lot"], r["location_id"], r["quantity"], r["packed_quantity"])
        for r in rows
    )


def equipment(api: Api, item_id: int) -> dict[str, str]:
    """{serial: status} of an item's units."""
    return {u["serial"]: u["status"] for u in all_pages(api, "/equipment", item_id=item_id)}


def day_states(p: Pharmacy, kit: Body) -> list[tuple[str, int | None]]:
    """(status, kit_id) of the kit's days, read through the infusion-day endpoint."""
    days = [ok(p.coordinator.get(f"/infusion-days/{d['id']}")) for d in kit["infusion_days"]]
    return [(day["status"], day["kit_id"]) for day in days]


def state(p: Pharmacy, kit: Body) -> tuple[Any, ...]:
    """Everything a refused request must leave alone: the kit, its ETag, every reservation,
    every stock row, every pump and every movement."""
    response = p.warehouse.get(f"/kits/{kit['id']}")
    return (
        response.headers["ETag"],
        response.get_json(),
        all_pages(p.warehouse, "/reservations"),
        all_pages(p.warehouse, "/stock", include_empty="true"),
        all_pages(p.warehouse, "/equipment"),
        all_pages(p.warehouse, "/movements"),
    )


def update(database: Database, query: Any, **values: Any) -> None:
    """Set columns of one row straight in the database: for states no endpoint reaches (an
    expired lot: receipts refuse them; a day in the past)."""
    session = database.session()
    try:
        row = session.scalars(query).one()
        for name, value in values.items():
            setattr(row, name, value)
        session.commit()
    finally:
        session.close()


def scan_rest(p: Pharmacy, kit: Body) -> Body:
    """Scan the gloves and the pump, leaving the flushes to the test."""
    current = p.scan(kit, item_id=p.gloves["id"], quantity=4)["kit"]
    return p.scan(current, barcode=gs1(p.pump, serial=pump_serial(current)))["kit"]


# --- building ----------------------------------------------------------------------------------


def test_a_kit_holds_its_days_reservations_and_the_course_pump(pharmacy):
    p = pharmacy
    _, days = p.therapy(1, 2)
    p.plan()

    response = p.warehouse.post(
        "/kits", {"patient_id": p.patient_id, "infusion_day_ids": [d["id"] for d in days]}
    )

    kit = ok(response, 201)
    assert response.headers["ETag"] == etag(p, kit)
    expected = ["open", p.patient_id, iso(1), iso(2)]
    assert [kit[key] for key in ("status", "patient_id", "first_day", "last_day")] == expected
    assert pump_serial(kit) in p.serials
    assert sorted(summary(kit)) == sorted(
        [
            (p.flush["id"], p.lots["A"], None, p.shelf["id"], 8, 0),
            (p.gloves["id"], None, None, p.shelf_b["id"], 4, 0),
            (p.pump["id"], None, pump_serial(kit), p.shelf["id"], 1, 0),
        ]
    )
    assert (kit["missing"], kit["complete"]) == ([], False)
    assert day_states(p, kit) == [("reserved", kit["id"]), ("reserved", kit["id"])]
    assert len(all_pages(p.warehouse, "/reservations", kit_id=kit["id"], status="active")) == 5


def test_a_day_not_yet_planned_cannot_go_into_a_kit(pharmacy):
    p = pharmacy
    _, days = p.therapy(1, 2)
    body = {"patient_id": p.patient_id, "infusion_day_ids": [d["id"] for d in days]}

    refused = problem(p.warehouse.post("/kits", body), 409)

    statuses = sorted((d["infusion_day_id"], d["status"]) for d in refused["days"])
    assert statuses == [(days[0]["id"], "scheduled"), (days[1]["id"], "scheduled")]
    assert all_pages(p.warehouse, "/kits", patient_id=p.patient_id) == []


def test_a_short_day_cannot_go_into_a_kit(pharmacy):
    p = pharmacy
    _, days = p.therapy(*range(1, 12))  # 11 days x 4 flushes > the 40 in stock
    p.plan()
    statuses = [ok(p.coordinator.get(f"/infusion-days/{d['id']}"))["status"] for d in days]
    assert statuses == ["reserved"] * 10 + ["short"]
    body = {"patient_id": p.patient_id, "infusion_day_ids": [days[9]["id"], days[10]["id"]]}

    refused = problem(p.warehouse.post("/kits", body), 409)

    assert [(d["infusion_day_id"], d["status"]) for d in refused["days"]] == [
        (days[10]["id"], "short")
    ]
    assert all_pages(p.warehouse, "/kits", patient_id=p.patient_id) == []
    assert ok(p.coordinator.get(f"/infusion-days/{days[9]['id']}"))["kit_id"] is None


def test_a_day_already_in_a_kit_cannot_go_into_another(pharmacy, kit):
    p = pharmacy
    second = kit["infusion_days"][1]["id"]

    refused = problem(
        p.warehouse.post("/kits", {"patient_id": p.patient_id, "infusion_day_ids": [second]}), 409
    )

    assert refused["infusion_day_ids"] == [second]
    assert [k["id"] for k in all_pages(p.warehouse, "/kits")] == [kit["id"]]


def test_a_day_in_the_past_cannot_go_into_a_kit(pharmacy, database):
    p = pharmacy
    _, [day] = p.therapy(1)
    p.plan()
    update(database, select(InfusionDay).where(InfusionDay.id == day["id"]), date=in_days(-1))

    refused = problem(
        p.warehouse.post("/kits", {"patient_id": p.patient_id, "infusion_day_ids": [day["id"]]}),
        409,
    )

    assert refused["infusion_day_ids"] == [day["id"]]
    assert all_pages(p.warehouse, "/kits") == []


@pytest.mark.parametrize("case", ["unknown day", "another patient's day", "a day twice"])
def test_days_that_are_not_the_patients_are_invalid_input(pharmacy, database, case):
    p = pharmacy
    _, [day] = p.therapy(1)
    _, [foreign] = p.therapy(1, patient_id=make_patient(database, make_payer(database)))
    p.plan()
    day_ids = {
        "unknown day": [day["id"], 99_999_999],
        "another patient's day": [day["id"], foreign["id"]],
        "a day twice": [day["id"], day["id"]],
    }[case]

    refused = problem(
        p.warehouse.post("/kits", {"patient_id": p.patient_id, "infusion_day_ids": day_ids}), 422
    )

    assert "infusion_day_ids" in refused["errors"]
    assert all_pages(p.warehouse, "/kits") == []


def test_a_second_kit_for_later_days_carries_no_second_pump(pharmacy):
    p = pharmacy
    _, days = p.therapy(1, 2, 3, 4)
    p.plan()
    first = p.build(days[:2])

    second = p.build(days[2:])

    assert summary(first, p.pump) == [(p.pump["id"], None, pump_serial(first), p.shelf["id"], 1, 0)]
    assert sorted(summary(second)) == sorted(
        [
            (p.flush["id"], p.lots["A"], None, p.shelf["id"], 8, 0),
            (p.gloves["id"], None, None, p.shelf_b["id"], 4, 0),
        ]
    )
    assert second["missing"] == []
    # The course has one pump, riding in the first kit; the second stays on the shelf.
    assert sorted(equipment(p.warehouse, p.pump["id"]).values()) == ["available", "reserved"]
    assert p.pack(p.scan_all(second))["status"] == "packed"


def test_a_planned_lot_expiring_before_the_kits_last_day_is_replaced_at_build(pharmacy):
    p = pharmacy
    soon = p.receive_flush("SOON", 10, expiry_in=1)
    _, days = p.therapy(1, 2)
    p.plan()
    # FEFO gave the first day the lot that expires on it; the kit also covers the second day.
    assert reserved_of(p.warehouse, p.flush["id"]) == {
        (p.shelf["id"], soon): 4,
        (p.shelf["id"], p.lots["A"]): 4,
    }

    kit = p.build(days)

    assert summary(kit, p.flush) == [(p.flush["id"], p.lots["A"], None, p.shelf["id"], 8, 0)]
    assert kit["missing"] == []
    assert reserved_of(p.warehouse, p.flush["id"]) == {(p.shelf["id"], p.lots["A"]): 8}


# --- scanning: counting and ETags --------------------------------------------------------------


def test_scanning_the_reserved_lot_counts_toward_its_line_until_the_kit_is_complete(pharmacy, kit):
    p = pharmacy
    barcode = gs1(p.flush, lot=p.lots["A"], expiry=in_days(200))

    first = p.scan(kit, barcode=barcode, quantity=3)

    expected = {"item_id": p.flush["id"], "lot": p.lots["A"], "serial": None, "quantity": 3}
    assert first["scan"] == {**expected, "counted": 3, "swapped": 0, "filled": 0}
    assert summary(first["kit"], p.flush) == [
        (p.flush["id"], p.lots["A"], None, p.shelf["id"], 8, 3)
    ]
    assert first["kit"]["complete"] is False

    current = p.scan(first["kit"], item_id=p.flush["id"], lot=p.lots["A"], quantity=5)["kit"]
    current = scan_rest(p, current)

    assert all(line["packed_quantity"] == line["quantity"] for line in current["lines"])
    assert (current["complete"], current["missing"]) == (True, [])
    assert read(p, kit)["complete"] is True
    # Counting moves no reservation: lot A in bin A still holds the 8.
    assert reserved_of(p.warehouse, p.flush["id"]) == {(p.shelf["id"], p.lots["A"]): 8}


def test_a_scan_answers_with_a_new_etag_and_a_stale_if_match_is_refused(pharmacy, kit):
    p = pharmacy
    stale = etag(p, kit)
    scanned = post(p, kit, "scans", {"item_id": p.gloves["id"]})
    assert stale != scanned.headers["ETag"] == etag(p, kit)
    assert ok(scanned)["kit"]["version"] > kit["version"]
    before = state(p, kit)

    problem(post(p, kit, "scans", {"item_id": p.gloves["id"]}, If_Match=stale), 412)

    assert state(p, kit) == before
    fresh = post(p, kit, "scans", {"item_id": p.gloves["id"]}, If_Match=before[0])
    assert ok(fresh)["scan"]["counted"] == 1


def test_a_scan_replayed_with_its_idempotency_key_counts_once(pharmacy, kit):
    p = pharmacy
    body = {"item_id": p.gloves["id"], "quantity": 2}

    first = ok(post(p, kit, "scans", body, Idempotency_Key="scan-gloves-1"))
    again = post(p, kit, "scans", body, Idempotency_Key="scan-gloves-1")

    assert ok(again) == first
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert summary(read(p, kit), p.gloves) == [(p.gloves["id"], None, None, p.shelf_b["id"], 4, 2)]


# --- scanning: refusals ------------------------------------------------------------------------


Setup = Callable[[Pharmacy, Body], Body]


def _not_in_kit(p: Pharmacy, kit: Body) -> Body:
    other = p.catalog.item(tracking="none", category="dressing")
    p.catalog.receive(other, p.shelf, 5)
    return {"item_id": other["id"], "quantity": 1}


def _expired(p: Pharmacy, kit: Body) -> Body:
    lot = p.receive_flush("OLD", 10, expiry_in=300)
    update(p.database, select(Lot).where(Lot.lot_number == lot), expiry=in_days(-1))
    return {"item_id": p.flush["id"], "lot": lot, "quantity": 4}


def _recalled(p: Pharmacy, kit: Body) -> Body:
    lot = p.receive_flush("R", 10, expiry_in=300)
    ok(p.warehouse.post("/recalls", {"item_id": p.flush["id"], "lot": lot, "note": "FDA"}), 201)
    return {"barcode": gs1(p.flush, lot=lot, expiry=in_days(300)), "quantity": 4}


def _too_many_gloves(p: Pharmacy, kit: Body) -> Body:
    p.scan(kit, item_id=p.gloves["id"], quantity=3)
    return {"item_id": p.gloves["id"], "quantity": 2}


def _pm_overdue(p: Pharmacy, kit: Body) -> Body:
    set_pm_due(p.database, p.pump["id"], pump_serial(kit), in_days(-1))
    return {"barcode": gs1(p.pump, serial=pump_serial(kit))}


def _pump_already_scanned(p: Pharmacy, kit: Body) -> Body:
    p.scan(kit, item_id=p.pump["id"], serial=pump_serial(kit))
    return {"item_id": p.pump["id"], "serial": pump_serial(kit)}


def _unit_not_available(p: Pharmacy, kit: Body) -> Body:
    """The other pump, reserved for another patient's course."""
    p.therapy(3, patient_id=make_patient(p.database, make_payer(p.database)))
    p.plan()
    [serial] = [s for s in p.serials if s != pump_serial(kit)]
    assert equipment(p.warehouse, p.pump["id"])[serial] == "reserved"
    return {"barcode": gs1(p.pump, serial=serial)}


def _lot(name: str, quantity: int, expiry_in: int, where: str = "shelf", scan: int = 4) -> Setup:
    """Receive ``quantity`` flushes of a new lot into ``where``; scan ``scan`` of them."""

    def setup(p: Pharmacy, kit: Body) -> Body:
        lot = p.receive_flush(name, quantity, expiry_in=expiry_in, shelf=getattr(p, where))
        return {"item_id": p.flush["id"], "lot": lot, "quantity": scan}

    return setup


REFUSALS: dict[str, tuple[str, Setup]] = {
    "item not in the kit": ("not_in_kit", _not_in_kit),
    "GTIN not in the catalog": ("not_in_kit", lambda p, k: {"barcode": f"(01){gtin_for(98765)}"}),
    "unknown lot": ("unknown_lot", lambda p, k: {"barcode": gs1(p.flush, lot="NOPE")}),
    "unknown serial": ("unknown_serial", lambda p, k: {"barcode": gs1(p.pump, serial="NOPE")}),
    "expired lot": ("expired", _expired),
    "recalled lot": ("recalled", _recalled),
    "lot only in quarantine": ("quarantined", _lot("Q", 10, 300, "quarantine")),
    # The kit's last day is in 2 days.
    "lot expiring before the last day": ("expires_before_last_day", _lot("S", 10, 1)),
    "lot short in storage": ("insufficient_lot_stock", _lot("B", 3, 300, "shelf_b", scan=5)),
    "more than the kit needs": (
        "too_many",
        lambda p, k: {"item_id": p.flush["id"], "lot": p.lots["A"], "quantity": 9},
    ),
    "more gloves than are left to scan": ("too_many", _too_many_gloves),
    "a pump scanned twice": ("too_many", _pump_already_scanned),
    "pump overdue for maintenance": ("pm_overdue", _pm_overdue),
    "another patient's pump": ("unit_not_available", _unit_not_available),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_scan_names_its_reason_and_changes_nothing(pharmacy, kit, case):
    p = pharmacy
    reason, setup = REFUSALS[case]
    body = setup(p, kit)
    before = state(p, kit)

    refused = problem(post(p, kit, "scans", body), 409)

    assert refused["reason"] == reason
    assert state(p, kit) == before


@pytest.mark.parametrize(
    "case",
    ["garbage", "bad check digit", "lot item without a lot", "two pumps at once", "both sources"],
)
def test_a_malformed_scan_is_invalid_input(pharmacy, kit, case):
    p = pharmacy
    good = p.flush["gtin"]
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    body = {
        "garbage": {"barcode": "not a barcode at all"},
        "bad check digit": {"barcode": f"(01){bad}(10){p.lots['A']}"},
        "lot item without a lot": {"item_id": p.flush["id"], "quantity": 4},
        "two pumps at once": {"item_id": p.pump["id"], "serial": pump_serial(kit), "quantity": 2},
        "both sources": {"barcode": gs1(p.gloves), "item_id": p.gloves["id"]},
    }[case]
    before = state(p, kit)

    problem(post(p, kit, "scans", body), 422)

    assert state(p, kit) == before


# --- scanning: swapping lots and pumps, filling gaps ------------------------------------------


def test_scanning_another_good_lot_moves_the_reservation_to_it(pharmacy, kit):
    p = pharmacy
    lot_b, bin_b = p.receive_flush("B", 20, expiry_in=300, shelf=p.shelf_b), p.shelf_b["id"]
    first, second = (d["id"] for d in kit["infusion_days"])

    result = p.scan(kit, barcode=gs1(p.flush, lot=lot_b, expiry=in_days(300)), quantity=8)

    assert [result["scan"][key] for key in ("counted", "swapped", "filled")] == [0, 8, 0]
    assert summary(result["kit"], p.flush) == [(p.flush["id"], lot_b, None, bin_b, 8, 8)]
    assert reserved_of(p.warehouse, p.flush["id"]) == {(bin_b, lot_b): 8}
    assert held(p.warehouse, item_id=p.flush["id"]) == Counter(
        [(first, lot_b, bin_b, 4, 4), (second, lot_b, bin_b, 4, 4)]
    )
    released = all_pages(p.warehouse, "/reservations", status="released", kit_id=kit["id"])
    assert sorted((r["lot"], r["quantity"]) for r in released) == [(p.lots["A"], 4)] * 2


def test_a_partial_swap_moves_only_the_scanned_units_from_the_latest_day(pharmacy, kit):
    p = pharmacy
    lot_a, lot_b = p.lots["A"], p.receive_flush("B", 20, expiry_in=300, shelf=p.shelf_b)
    bin_a, bin_b = p.shelf["id"], p.shelf_b["id"]
    first, second = (d["id"] for d in kit["infusion_days"])

    result = p.scan(kit, item_id=p.flush["id"], lot=lot_b, quantity=3)

    assert result["scan"]["swapped"] == 3
    assert sorted(summary(result["kit"], p.flush)) == sorted(
        [(p.flush["id"], lot_a, None, bin_a, 5, 0), (p.flush["id"], lot_b, None, bin_b, 3, 3)]
    )
    assert reserved_of(p.warehouse, p.flush["id"]) == {(bin_a, lot_a): 5, (bin_b, lot_b): 3}
    assert held(p.warehouse, item_id=p.flush["id"]) == Counter(
        [(first, lot_a, bin_a, 4, 0), (second, lot_a, bin_a, 1, 0), (second, lot_b, bin_b, 3, 3)]
    )


def test_units_already_scanned_stay_on_their_lot_when_the_rest_swaps(pharmacy, kit):
    p = pharmacy
    lot_a, lot_b, bin_a = p.lots["A"], p.receive_flush("B", 20, expiry_in=300), p.shelf["id"]
    first, second = (d["id"] for d in kit["infusion_days"])
    p.scan(kit, item_id=p.flush["id"], lot=lot_a, quantity=2)  # counted on the first day

    result = p.scan(kit, item_id=p.flush["id"], lot=lot_b, quantity=6)

    assert result["scan"]["swapped"] == 6
    assert held(p.warehouse, item_id=p.flush["id"]) == Counter(
        [(first, lot_a, bin_a, 2, 2), (first, lot_b, bin_a, 2, 2), (second, lot_b, bin_a, 4, 4)]
    )
    assert reserved_of(p.warehouse, p.flush["id"]) == {(bin_a, lot_a): 2, (bin_a, lot_b): 6}
    one_more = {"item_id": p.flush["id"], "lot": lot_b}
    assert problem(post(p, kit, "scans", one_more), 409)["reason"] == "too_many"


def test_a_swap_takes_the_scanned_lot_from_every_bin_that_holds_it(pharmacy, kit):
    p = pharmacy
    lot_b = p.receive_flush("B", 5, expiry_in=300, shelf=p.shelf)
    p.receive_flush("B", 3, expiry_in=300, shelf=p.shelf_b)
    bin_a, bin_b, staging = p.shelf["id"], p.shelf_b["id"], p.staging["id"]

    result = p.scan(kit, item_id=p.flush["id"], lot=lot_b, quantity=8)

    assert result["scan"]["swapped"] == 8
    assert sorted(summary(result["kit"], p.flush)) == sorted(
        [(p.flush["id"], lot_b, None, bin_a, 5, 5), (p.flush["id"], lot_b, None, bin_b, 3, 3)]
    )
    assert reserved_of(p.warehouse, p.flush["id"]) == {(bin_a, lot_b): 5, (bin_b, lot_b): 3}
    p.pack(scan_rest(p, result["kit"]))
    assert stock_of(p.warehouse, p.flush["id"], lot=lot_b) == {
        (bin_a, lot_b): 0,
        (bin_b, lot_b): 0,
        (staging, lot_b): 8,
    }
    # Cancelled, each unit goes back to the bin it was picked from.
    ok(post(p, kit, "cancel"))
    assert stock_of(p.warehouse, p.flush["id"], lot=lot_b) == {
        (bin_a, lot_b): 5,
        (bin_b, lot_b): 3,
        (staging, lot_b): 0,
    }


def test_a_lot_expiring_on_the_last_day_itself_is_good_for_the_kit(pharmacy, kit):
    p = pharmacy
    edge = p.receive_flush("EDGE", 8, expiry_in=2)

    result = p.scan(kit, item_id=p.flush["id"], lot=edge, quantity=8)

    assert result["scan"]["swapped"] == 8
    assert reserved_of(p.warehouse, p.flush["id"]) == {(p.shelf["id"], edge): 8}


def test_scanning_the_reserved_pump_counts_it(pharmacy, kit):
    p = pharmacy
    serial = pump_serial(kit)

    result = p.scan(kit, barcode=gs1(p.pump, serial=serial))

    assert [result["scan"][key] for key in ("serial", "counted", "swapped")] == [serial, 1, 0]
    assert summary(result["kit"], p.pump) == [(p.pump["id"], None, serial, p.shelf["id"], 1, 1)]
    assert equipment(p.warehouse, p.pump["id"])[serial] == "reserved"


def test_scanning_another_available_pump_swaps_the_course_reservation_to_it(pharmacy, kit):
    p = pharmacy
    planned = pump_serial(kit)
    [spare] = [s for s in p.serials if s != planned]

    result = p.scan(kit, item_id=p.pump["id"], serial=spare)

    assert [result["scan"][key] for key in ("counted", "swapped")] == [0, 1]
    assert summary(result["kit"], p.pump) == [(p.pump["id"], None, spare, p.shelf["id"], 1, 1)]
    assert equipment(p.warehouse, p.pump["id"]) == {planned: "available", spare: "reserved"}
    # The kit needs one pump: the planned one is now one too many.
    again = post(p, kit, "scans", {"item_id": p.pump["id"], "serial": planned})
    assert problem(again, 409)["reason"] == "too_many"


def test_a_recalled_lot_leaves_a_gap_that_a_scan_of_a_good_lot_fills(pharmacy, kit):
    p = pharmacy
    ok(p.warehouse.post("/recalls", {"item_id": p.flush["id"], "lot": p.lots["A"]}), 201)

    held_kit = read(p, kit)

    assert summary(held_kit, p.flush) == []
    assert held_kit["missing"] == [{"item_id": p.flush["id"], "sku": p.flush["sku"], "quantity": 8}]
    assert (held_kit["complete"], bool(held_kit["hold_reason"])) == (False, True)
    recalled = post(p, kit, "scans", {"item_id": p.flush["id"], "lot": p.lots["A"]})
    assert problem(recalled, 409)["reason"] == "recalled"
    gap = problem(post(p, kit, "pack"), 409)["missing"]
    assert [(m["item_id"], m["quantity"]) for m in gap if m["problem"] == "not_reserved"] == [
        (p.flush["id"], 8)
    ]

    lot_c = p.receive_flush("C", 10, expiry_in=300)
    result = p.scan(held_kit, item_id=p.flush["id"], lot=lot_c, quantity=8)

    assert result["scan"]["filled"] == 8
    assert summary(result["kit"], p.flush) == [(p.flush["id"], lot_c, None, p.shelf["id"], 8, 8)]
    assert result["kit"]["missing"] == []
    assert reserved_of(p.warehouse, p.flush["id"]) == {(p.shelf["id"], lot_c): 8}
    packed = p.pack(scan_rest(p, result["kit"]))
    assert (packed["status"], packed["hold_reason"]) == ("packed", None)


def test_a_recall_reopens_a_packed_kit_until_a_good_lot_replaces_the_recalled_one(pharmacy, kit):
    p = pharmacy
    p.pack(p.scan_all(kit))
    lot_c = p.receive_flush("C", 10, expiry_in=300)

    ok(p.warehouse.post("/recalls", {"item_id": p.flush["id"], "lot": p.lots["A"]}), 201)

    reopened = read(p, kit)
    assert (reopened["status"], reopened["complete"]) == ("open", False)
    assert reopened["hold_reason"]
    assert [d["status"] for d in reopened["infusion_days"]] == ["reserved", "reserved"]
    assert where(p)[("flush", p.quarantine["id"], p.lots["A"])] == 40
    result = p.scan(reopened, item_id=p.flush["id"], lot=lot_c, quantity=8)
    assert result["kit"]["complete"] is True
    packed = p.pack(result["kit"])
    assert (packed["status"], packed["hold_reason"]) == ("packed", None)
    serial = pump_serial(kit)
    assert {key: n for key, n in where(p).items() if p.staging["id"] in key} == {
        ("flush", p.staging["id"], lot_c): 8,
        ("gloves", p.staging["id"], None): 4,
        ("pump", p.staging["id"], None): 1,
    }
    ok(post(p, kit, "cancel"))
    assert where(p) == {
        ("flush", p.quarantine["id"], p.lots["A"]): 40,
        ("flush", p.shelf["id"], lot_c): 10,
        ("gloves", p.shelf_b["id"], None): 50,
        ("pump", p.shelf["id"], None): 2,
    }
    assert equipment(p.warehouse, p.pump["id"])[serial] == "available"


# --- packing -----------------------------------------------------------------------------------


def test_an_incomplete_kit_is_not_packed_and_the_refusal_lists_what_is_missing(pharmacy, kit):
    p = pharmacy
    current = p.scan(kit, item_id=p.flush["id"], lot=p.lots["A"], quantity=8)["kit"]
    p.scan(current, item_id=p.gloves["id"], quantity=1)
    before = state(p, kit)

    refused = problem(post(p, kit, "pack"), 409)

    assert sorted(
        (m["item_id"], m["serial"], m["packed_quantity"], m["quantity"], m["problem"])
        for m in refused["missing"]
    ) == [
        (p.gloves["id"], None, 1, 4, "not_scanned"),
        (p.pump["id"], pump_serial(kit), 0, 1, "not_scanned"),
    ]
    assert state(p, kit) == before


def test_a_pump_overdue_for_maintenance_stops_the_packing(pharmacy, kit):
    p = pharmacy
    p.scan_all(kit)
    set_pm_due(p.database, p.pump["id"], pump_serial(kit), in_days(-1))
    before = state(p, kit)

    refused = problem(post(p, kit, "pack"), 409)

    assert [(m["serial"], m["problem"]) for m in refused["missing"]] == [
        (pump_serial(kit), "pm_overdue")
    ]
    assert state(p, kit) == before


def test_packing_moves_the_units_from_their_bins_to_staging_as_picks(pharmacy, kit):
    p = pharmacy
    complete = p.scan_all(kit)
    assert complete["complete"] is True
    serial, staging = pump_serial(kit), p.staging["id"]

    response = post(p, kit, "pack")

    packed = ok(response)
    assert response.headers["ETag"] == etag(p, kit)
    assert packed["version"] > complete["version"]
    assert (packed["status"], packed["staging_location_id"]) == ("packed", staging)
    assert packed["packed_at"] is not None
    assert where(p) == {
        ("flush", p.shelf["id"], p.lots["A"]): 32,
        ("flush", staging, p.lots["A"]): 8,
        ("gloves", p.shelf_b["id"], None): 46,
        ("gloves", staging, None): 4,
        ("pump", p.shelf["id"], None): 1,
        ("pump", staging, None): 1,
    }
    moved: Counter[tuple[Any, ...]] = Counter()
    for m in all_pages(p.warehouse, "/movements", kit_id=kit["id"]):
        key = (m["type"], m["item_id"], m["lot"], m["serial"])
        moved[(*key, m["from"]["location_id"], m["to"]["location_id"])] += m["quantity"]
    assert moved == Counter(
        {
            ("pick", p.flush["id"], p.lots["A"], None, p.shelf["id"], staging): 8,
            ("pick", p.gloves["id"], None, None, p.shelf_b["id"], staging): 4,
            ("pick", p.pump["id"], None, serial, p.shelf["id"], staging): 1,
        }
    )
    # Picked units no longer count as reserved in storage, but on the staging bench, where
    # nothing else may take them.
    assert reserved_of(p.warehouse, p.flush["id"]) == {(staging, p.lots["A"]): 8}
    assert reserved_of(p.warehouse, p.gloves["id"]) == {(staging, None): 4}
    kit_reservations = all_pages(p.warehouse, "/reservations", kit_id=kit["id"])
    assert {r["status"] for r in kit_reservations} == {"picked"}
    assert [d["status"] for d in packed["infusion_days"]] == ["packed", "packed"]
    assert day_states(p, kit) == [("packed", kit["id"]), ("packed", kit["id"])]
    assert equipment(p.warehouse, p.pump["id"])[serial] == "reserved"


def test_migration_0007_counts_the_units_of_kits_already_packed_as_held_on_their_bench(
    pharmacy, kit
):
    """Kits packed before revision 0007 had nothing reserved on their bench; upgrading counts
    their picked units there, and downgrading gives the old figures back."""
    p = pharmacy
    post(p, p.scan_all(kit), "pack")
    staging = p.staging["id"]
    revision = importlib.import_module("migrations.versions.0007_kit_units_held_on_bench_and_van")
    session = p.database.session()
    try:
        session.execute(sqlalchemy.text(revision.DOWNGRADE))
        session.commit()
        assert reserved_of(p.warehouse, p.flush["id"]) == {}
        assert reserved_of(p.warehouse, p.gloves["id"]) == {}
        session.execute(sqlalchemy.text(revision.UPGRADE))
        session.commit()
        assert reserved_of(p.warehouse, p.flush["id"]) == {(staging, p.lots["A"]): 8}
        assert reserved_of(p.warehouse, p.gloves["id"]) == {(staging, None): 4}
        assert ledger_discrepancies(session) == []
    finally:
        session.close()


def test_a_packed_kit_takes_no_scans_and_is_not_packed_twice(pharmacy, kit):
    p = pharmacy
    p.pack(p.scan_all(kit))
    before = state(p, kit)

    problem(post(p, kit, "pack"), 409)
    problem(post(p, kit, "scans", {"item_id": p.gloves["id"]}), 409)

    assert state(p, kit) == before


def test_packing_with_a_stale_if_match_is_refused(pharmacy, kit):
    p = pharmacy
    stale = etag(p, kit)
    p.scan_all(kit)
    before = state(p, kit)

    problem(post(p, kit, "pack", If_Match=stale), 412)

    assert state(p, kit) == before
    assert ok(post(p, kit, "pack", If_Match=before[0]))["status"] == "packed"


# --- cancelling --------------------------------------------------------------------------------


def test_cancelling_an_open_kit_releases_its_reservations_and_frees_its_days(pharmacy, kit):
    p = pharmacy
    p.scan(kit, item_id=p.flush["id"], lot=p.lots["A"], quantity=4)
    on_hand = where(p)

    response = post(p, kit, "cancel", {"reason": "therapy on hold"})

    cancelled = ok(response)
    assert response.headers["ETag"] == etag(p, kit)
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "therapy on hold")
    assert cancelled["cancelled_at"] is not None
    statuses = {r["status"] for r in all_pages(p.warehouse, "/reservations", kit_id=kit["id"])}
    assert statuses == {"released"}
    for item in (p.flush, p.gloves, p.pump):
        assert reserved_of(p.warehouse, item["id"]) == {}
    assert set(equipment(p.warehouse, p.pump["id"]).values()) == {"available"}
    assert day_states(p, kit) == [("scheduled", None), ("scheduled", None)]
    assert all_pages(p.warehouse, "/movements", kit_id=kit["id"]) == []
    assert where(p) == on_hand
    # The days are free again: planned anew, they go into a new kit.
    p.plan()
    again = p.build(kit["infusion_days"])
    assert again["id"] != kit["id"]
    assert len(again["lines"]) == 3


def test_cancelling_a_packed_kit_puts_every_unit_back_in_its_bin(pharmacy, kit):
    p = pharmacy
    on_shelves = where(p)
    p.pack(p.scan_all(kit))
    serial, staging = pump_serial(kit), p.staging["id"]

    cancelled = ok(post(p, kit, "cancel"))

    assert cancelled["status"] == "cancelled"
    assert where(p) == on_shelves
    back = {
        (m["item_id"], m["from"]["location_id"], m["to"]["location_id"])
        for m in all_pages(p.warehouse, "/movements", kit_id=kit["id"])
        if m["type"] != "pick"
    }
    assert back == {
        (p.flush["id"], staging, p.shelf["id"]),
        (p.gloves["id"], staging, p.shelf_b["id"]),
        (p.pump["id"], staging, p.shelf["id"]),
    }
    for item in (p.flush, p.gloves, p.pump):
        assert reserved_of(p.warehouse, item["id"]) == {}
    statuses = {r["status"] for r in all_pages(p.warehouse, "/reservations", kit_id=kit["id"])}
    assert statuses == {"released"}
    assert equipment(p.warehouse, p.pump["id"])[serial] == "available"
    assert day_states(p, kit) == [("scheduled", None), ("scheduled", None)]


def test_a_stale_if_match_stops_a_cancel_and_a_cancelled_kit_stays_cancelled(pharmacy, kit):
    p = pharmacy
    stale = etag(p, kit)
    p.scan(kit, item_id=p.gloves["id"])
    problem(post(p, kit, "cancel", If_Match=stale), 412)
    assert read(p, kit)["status"] == "open"
    ok(post(p, kit, "cancel", If_Match=etag(p, kit)))
    before = state(p, kit)

    problem(post(p, kit, "cancel"), 409)
    problem(post(p, kit, "pack"), 409)
    problem(post(p, kit, "scans", {"item_id": p.gloves["id"]}), 409)

    assert state(p, kit) == before


def test_a_day_in_a_kit_can_be_neither_moved_nor_cancelled(pharmacy, kit):
    p = pharmacy
    day_id = kit["infusion_days"][0]["id"]

    problem(p.coordinator.patch(f"/infusion-days/{day_id}", {"status": "cancelled"}), 409)
    problem(p.coordinator.patch(f"/infusion-days/{day_id}", {"date": iso(5)}), 409)

    assert ok(p.coordinator.get(f"/infusion-days/{day_id}"))["status"] == "reserved"
    assert read(p, kit)["infusion_days"] == kit["infusion_days"]


def test_an_unknown_kit_is_not_found(warehouse):
    problem(warehouse.get("/kits/99999999"), 404)
    problem(warehouse.get("/kits/99999999/pick-list"), 404)
    problem(warehouse.post("/kits/99999999/scans", {"item_id": 1}), 404)
    problem(warehouse.post("/kits/99999999/pack", {}), 404)
    problem(warehouse.post("/kits/99999999/cancel", {}), 404)


# --- pick list and delivery ticket -------------------------------------------------------------


def test_the_pick_list_sorts_lines_by_bin_code(pharmacy, kit):
    p = pharmacy

    listing = ok(p.warehouse.get(f"/kits/{kit['id']}/pick-list"))

    assert (listing["kit_id"], listing["number"], listing["status"]) == (
        kit["id"],
        kit["number"],
        "open",
    )
    assert listing["days"] == [iso(1), iso(2)]
    # Bin A (flush, then pump by SKU) before bin B (gloves), whatever order they were reserved.
    assert [(line["location_code"], line["item_id"]) for line in listing["lines"]] == [
        (p.shelf["code"], p.flush["id"]),
        (p.shelf["code"], p.pump["id"]),
        (p.shelf_b["code"], p.gloves["id"]),
    ]
    assert listing["missing"] == []


def html(p: Pharmacy, kit: Body) -> str:
    response = p.warehouse.get(f"/kits/{kit['id']}/pick-list", headers={"Accept": "text/html"})
    assert (response.status_code, response.mimetype) == (200, "text/html")
    return response.get_data(as_text=True)


def test_the_printable_pick_list_carries_the_label_the_days_and_a_box_per_line(pharmacy, kit):
    p = pharmacy

    page = html(p, kit)

    assert f"<title>Pick list {kit['number']}</title>" in page
    label = [kit["number"], "Test Patient", "100 Congress Ave", "Austin, TX 78701"]
    days = [iso(1), iso(2)]
    lines = [p.flush["sku"], p.gloves["sku"], p.pump["sku"], p.lots["A"], pump_serial(kit)]
    for text in [*label, *days, *lines, iso(200)]:
        assert text in page, text
    assert page.count('class="box"') == 3
    # Bins in walking order: A's two lines, then B.
    assert page.index(p.shelf["code"]) < page.index(p.shelf_b["code"])
    assert ("Delivery ticket" in page, "Signature" in page) == (False, False)


def test_a_packed_kits_printable_page_is_the_delivery_ticket_with_a_signature_line(pharmacy, kit):
    p = pharmacy
    p.pack(p.scan_all(kit))

    page = html(p, kit)

    assert f"<title>Delivery ticket {kit['number']}</title>" in page
    assert "Pick list" not in page
    assert "Signature" in page
    assert "Test Patient" in page and "100 Congress Ave" in page
    assert page.count('class="box"') == 3
