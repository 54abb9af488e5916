"""Traceability and recalls: GET /trace by lot or serial, POST /recalls end to end (stock to
quarantine, reservations re-planned onto another lot, packed kits re-opened and held), the
refusals, the kit and patient filters of the ledger, and who may call what.

The scenario is kit_builders.Pharmacy: a lot-tracked flush (4 a day) whose lot A (40 units,
expiring in 200 days) sits in bin A, gloves (2 a day) in bin B, two serialized pumps (1 per
course) in bin A, a staging and a quarantine area, all at SITE1.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from inventory.users.models import Role
from tests.api.kit_builders import Pharmacy, gs1, in_days
from tests.api.ledger_helpers import all_pages, set_reserved, stock_of
from tests.api.planning_builders import make_patient, make_payer
from tests.builders import Api, ok, problem, unique

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


def recall(api: Api, item: Body, lot: str, note: str | None = "FDA recall notice") -> Any:
    return api.post("/recalls", {"item_id": item["id"], "lot": lot, "note": note})


def trace(api: Api, **params: Any) -> Any:
    return api.get("/trace", **params)


def read(p: Pharmacy, kit: Body) -> Body:
    return ok(p.warehouse.get(f"/kits/{kit['id']}"))


def another_patient(p: Pharmacy) -> int:
    return make_patient(p.database, make_payer(p.database), site="SITE1")


def kits_named(traced: Body) -> list[tuple[Any, ...]]:
    """(kit_id, number, patient_id) of the kits a trace names."""
    return [(k["kit_id"], k["number"], k["patient_id"]) for k in traced["kits"]]


def patients_named(traced: Body) -> list[tuple[int, list[int]]]:
    return [(entry["patient_id"], entry["kit_ids"]) for entry in traced["patients"]]


def places(traced: Body) -> list[tuple[int, str, int]]:
    """(location_id, kind, on_hand) of where the rest of the lot or serial is now."""
    return [(p["location_id"], p["kind"], p["on_hand"]) for p in traced["on_hand"]]


def flush_lines(kit: Body, p: Pharmacy) -> list[tuple[Any, ...]]:
    """(lot, location_id, quantity, packed_quantity) of the kit's flush lines."""
    return sorted(
        (line["lot"], line["location_id"], line["quantity"], line["packed_quantity"])
        for line in kit["lines"]
        if line["item_id"] == p.flush["id"]
    )


def held(api: Api, **filters: Any) -> Counter[tuple[Any, ...]]:
    """(infusion_day_id, lot, location_id, quantity, kit_id) of active reservations."""
    rows = all_pages(api, "/reservations", status="active", **filters)
    return Counter(
        (r["infusion_day_id"], r["lot"], r["location_id"], r["quantity"], r["kit_id"]) for r in rows
    )


def recall_moves(api: Api, item: Body, lot: str) -> Counter[tuple[Any, ...]]:
    """(from location, to location, quantity) of the lot's transfers with reason recalled."""
    rows = all_pages(api, "/movements", item_id=item["id"], lot=lot, type="transfer")
    return Counter(
        (m["from"]["location_id"], m["to"]["location_id"], m["quantity"])
        for m in rows
        if m["reason"] == "recalled"
    )


def nonzero(stock: dict[tuple[int, str | None], int]) -> dict[tuple[int, str | None], int]:
    return {key: on_hand for key, on_hand in stock.items() if on_hand}


def day_status(p: Pharmacy, day: Body) -> str:
    return ok(p.coordinator.get(f"/infusion-days/{day['id']}"))["status"]


def pump_serial(kit: Body) -> str:
    [serial] = [line["serial"] for line in kit["lines"] if line["serial"]]
    return serial


def snapshot(api: Api, item: Body) -> tuple[Any, ...]:
    """Everything a refused recall must leave alone for the item."""
    return (
        all_pages(api, "/stock", item_id=item["id"], include_empty="true"),
        all_pages(api, "/movements", item_id=item["id"]),
        all_pages(api, "/reservations", item_id=item["id"]),
    )


# --- the recall, end to end --------------------------------------------------------------------


def test_a_recall_quarantines_the_lot_replans_its_reservations_and_reopens_the_packed_kit(
    pharmacy,
):
    p = pharmacy
    lot_a = p.lots["A"]
    lot_b = p.receive_flush("B", 40, expiry_in=300, shelf=p.shelf_b)
    shelf, bin_b, staging, quarantine = (
        p.shelf["id"],
        p.shelf_b["id"],
        p.staging["id"],
        p.quarantine["id"],
    )
    _, days = p.therapy(1, 2)
    other = another_patient(p)
    _, other_days = p.therapy(3, 4, patient_id=other)
    p.plan()
    kit = p.build(days)
    assert flush_lines(kit, p) == [(lot_a, shelf, 8, 0)]  # FEFO: A expires first
    p.pack(p.scan_all(kit))
    first, second = (d["id"] for d in days)
    third, fourth = (d["id"] for d in other_days)

    response = recall(p.warehouse, p.flush, lot_a)

    recalled = ok(response, 201)
    assert (recalled["item_id"], recalled["lot"]) == (p.flush["id"], lot_a)
    assert recalled["recalled_at"] is not None
    assert kits_named(recalled) == [(kit["id"], kit["number"], p.patient_id)]
    [named] = recalled["kits"]
    assert (named["packed_quantity"], named["held_quantity"]) == (8, 0)
    assert patients_named(recalled) == [(p.patient_id, [kit["id"]])]
    assert recalled["patients"][0]["packed_quantity"] == 8
    assert places(recalled) == [(quarantine, "quarantine", 40)]
    assert recalled["quarantined_quantity"] == 40

    traced = ok(trace(p.coordinator, item_id=p.flush["id"], lot=lot_a))
    assert kits_named(traced) == [(kit["id"], kit["number"], p.patient_id)]
    assert patients_named(traced) == [(p.patient_id, [kit["id"]])]
    assert places(traced) == [(quarantine, "quarantine", 40)]

    # The rest of lot A, from storage and from the packed kit on the staging bench.
    assert nonzero(stock_of(p.warehouse, p.flush["id"], lot=lot_a)) == {(quarantine, lot_a): 40}
    assert recall_moves(p.warehouse, p.flush, lot_a) == Counter(
        {(shelf, quarantine, 32): 1, (staging, quarantine, 8): 1}
    )

    # No reservation holds lot A any more; the open ones moved to lot B.
    assert all_pages(p.warehouse, "/reservations", lot=lot_a, status="active") == []
    assert all_pages(p.warehouse, "/reservations", lot=lot_a, status="picked") == []
    assert held(p.warehouse, item_id=p.flush["id"]) == Counter(
        [
            (first, lot_b, bin_b, 4, kit["id"]),
            (second, lot_b, bin_b, 4, kit["id"]),
            (third, lot_b, bin_b, 4, None),
            (fourth, lot_b, bin_b, 4, None),
        ]
    )
    assert [day_status(p, d) for d in other_days] == ["reserved", "reserved"]

    reopened = read(p, kit)
    assert (reopened["status"], reopened["complete"]) == ("open", False)
    assert reopened["hold_reason"]
    assert lot_a in reopened["hold_reason"]
    assert flush_lines(reopened, p) == [(lot_b, bin_b, 8, 0)]

    refused = problem(p.warehouse.post(f"/kits/{kit['id']}/pack", {}), 409)
    assert [
        (m["item_id"], m["lot"], m["packed_quantity"], m["quantity"], m["problem"])
        for m in refused["missing"]
    ] == [(p.flush["id"], lot_b, 0, 8, "not_scanned")]
    assert read(p, kit)["status"] == "open"

    scanned = p.scan(reopened, barcode=gs1(p.flush, lot=lot_b, expiry=in_days(300)), quantity=8)
    assert scanned["scan"]["counted"] == 8
    assert scanned["kit"]["complete"] is True
    packed = p.pack(scanned["kit"])

    assert (packed["status"], packed["hold_reason"]) == ("packed", None)
    assert nonzero(stock_of(p.warehouse, p.flush["id"], lot=lot_b)) == {
        (bin_b, lot_b): 32,
        (staging, lot_b): 8,
    }
    picks = all_pages(p.warehouse, "/movements", kit_id=kit["id"], lot=lot_b, type="pick")
    moved: Counter[tuple[int, int]] = Counter()
    for m in picks:
        moved[(m["from"]["location_id"], m["to"]["location_id"])] += m["quantity"]
    assert moved == Counter({(bin_b, staging): 8})


def test_a_recall_of_a_lot_only_an_open_kit_holds_releases_its_scanned_units(pharmacy, kit):
    p = pharmacy
    lot_a, shelf, quarantine = p.lots["A"], p.shelf["id"], p.quarantine["id"]
    scanned = p.scan_all(kit)
    assert flush_lines(scanned, p) == [(lot_a, shelf, 8, 8)]
    lot_b = p.receive_flush("B", 20, expiry_in=300)

    ok(recall(p.warehouse, p.flush, lot_a), 201)

    assert nonzero(stock_of(p.warehouse, p.flush["id"], lot=lot_a)) == {(quarantine, lot_a): 40}
    assert recall_moves(p.warehouse, p.flush, lot_a) == Counter({(shelf, quarantine, 40): 1})
    released = all_pages(p.warehouse, "/reservations", kit_id=kit["id"], lot=lot_a)
    assert sorted((r["status"], r["quantity"]) for r in released) == [("released", 4)] * 2
    held_kit = read(p, kit)
    assert (held_kit["status"], held_kit["complete"], held_kit["missing"]) == ("open", False, [])
    assert held_kit["hold_reason"] and lot_a in held_kit["hold_reason"]
    # The replacement units are not scanned yet; the gloves and the pump stay scanned.
    assert flush_lines(held_kit, p) == [(lot_b, shelf, 8, 0)]
    others = [line for line in held_kit["lines"] if line["item_id"] != p.flush["id"]]
    assert all(line["packed_quantity"] == line["quantity"] for line in others)
    problem(p.warehouse.post(f"/kits/{kit['id']}/pack", {}), 409)

    result = p.scan(held_kit, item_id=p.flush["id"], lot=lot_b, quantity=8)

    assert result["scan"]["counted"] == 8
    assert p.pack(result["kit"])["status"] == "packed"


def test_the_recall_names_the_open_kit_whose_scanned_units_must_come_out(pharmacy, kit):
    p = pharmacy
    lot_a = p.lots["A"]
    p.scan_all(kit)
    p.receive_flush("B", 20, expiry_in=300)
    before = ok(trace(p.warehouse, item_id=p.flush["id"], lot=lot_a))
    assert kits_named(before) == [(kit["id"], kit["number"], p.patient_id)]
    assert before["kits"][0]["held_quantity"] == 8

    recalled = ok(recall(p.warehouse, p.flush, lot_a), 201)

    # The recall's answer is the warehouse's work list: the kit with 8 scanned units of the
    # recalled lot in its box must be on it.
    assert kits_named(recalled) == [(kit["id"], kit["number"], p.patient_id)]
    assert [entry["patient_id"] for entry in recalled["patients"]] == [p.patient_id]


def test_a_recall_with_no_other_lot_leaves_a_gap_that_a_new_good_lot_fills(pharmacy, kit):
    p = pharmacy
    lot_a = p.lots["A"]
    _, other_days = p.therapy(4, patient_id=another_patient(p))
    p.plan()
    assert day_status(p, other_days[0]) == "reserved"

    ok(recall(p.warehouse, p.flush, lot_a), 201)

    held_kit = read(p, kit)
    assert flush_lines(held_kit, p) == []
    assert held_kit["missing"] == [{"item_id": p.flush["id"], "sku": p.flush["sku"], "quantity": 8}]
    assert (held_kit["status"], held_kit["complete"]) == ("open", False)
    assert held_kit["hold_reason"]
    assert all_pages(p.warehouse, "/reservations", item_id=p.flush["id"], status="active") == []
    assert day_status(p, other_days[0]) == "short"
    refused = problem(p.warehouse.post(f"/kits/{kit['id']}/pack", {}), 409)
    assert [
        (m["item_id"], m["quantity"]) for m in refused["missing"] if m["problem"] == "not_reserved"
    ] == [(p.flush["id"], 8)]

    lot_c = p.receive_flush("C", 10, expiry_in=300)
    result = p.scan(held_kit, barcode=gs1(p.flush, lot=lot_c, expiry=in_days(300)), quantity=8)

    assert [result["scan"][key] for key in ("counted", "swapped", "filled")] == [0, 0, 8]
    assert result["kit"]["missing"] == []
    assert flush_lines(result["kit"], p) == [(lot_c, p.shelf["id"], 8, 8)]
    packed = p.pack(p.scan_all(result["kit"]))
    assert (packed["status"], packed["hold_reason"]) == ("packed", None)


def test_a_recalled_lot_is_refused_at_the_scanner(pharmacy, kit):
    p = pharmacy
    lot_r = p.receive_flush("R", 10, expiry_in=300)
    recalled = ok(recall(p.warehouse, p.flush, lot_r), 201)
    assert (recalled["kits"], recalled["patients"]) == ([], [])
    assert places(recalled) == [(p.quarantine["id"], "quarantine", 10)]
    before = (read(p, kit), snapshot(p.warehouse, p.flush))

    for body in (
        {"barcode": gs1(p.flush, lot=lot_r, expiry=in_days(300)), "quantity": 4},
        {"item_id": p.flush["id"], "lot": lot_r, "quantity": 1},
    ):
        refused = problem(p.warehouse.post(f"/kits/{kit['id']}/scans", body), 409)
        assert refused["reason"] == "recalled"

    assert (read(p, kit), snapshot(p.warehouse, p.flush)) == before


def test_a_lot_is_recalled_once(pharmacy):
    p = pharmacy
    lot_a = p.lots["A"]
    first = ok(recall(p.warehouse, p.flush, lot_a), 201)
    before = snapshot(p.warehouse, p.flush)

    again = problem(recall(p.coordinator, p.flush, lot_a, note="second notice"), 409)

    assert lot_a in again["detail"]
    assert snapshot(p.warehouse, p.flush) == before
    traced = ok(trace(p.warehouse, item_id=p.flush["id"], lot=lot_a))
    assert traced["recalled_at"] == first["recalled_at"]


def test_a_recall_replayed_with_its_idempotency_key_counts_once(pharmacy):
    p = pharmacy
    lot_a = p.lots["A"]
    headers = {"Idempotency-Key": unique("recall-key")}
    body = {"item_id": p.flush["id"], "lot": lot_a, "note": "FDA"}
    first = ok(p.warehouse.post("/recalls", body, headers=headers), 201)
    before = snapshot(p.warehouse, p.flush)

    replay = ok(p.warehouse.post("/recalls", body, headers=headers), 201)

    assert replay == first
    assert snapshot(p.warehouse, p.flush) == before
    changed = {**body, "note": "another note"}
    problem(p.warehouse.post("/recalls", changed, headers=headers), 422)


def test_units_already_in_quarantine_stay_put_and_the_rest_joins_them(pharmacy):
    p = pharmacy
    lot_a, shelf, quarantine = p.lots["A"], p.shelf["id"], p.quarantine["id"]
    line = {
        "item_id": p.flush["id"],
        "lot": lot_a,
        "quantity": 5,
        "from_location_id": shelf,
        "to_location_id": quarantine,
    }
    ok(p.warehouse.post("/transfers", {"lines": [line]}), 201)

    recalled = ok(recall(p.warehouse, p.flush, lot_a), 201)

    assert recall_moves(p.warehouse, p.flush, lot_a) == Counter({(shelf, quarantine, 35): 1})
    assert nonzero(stock_of(p.warehouse, p.flush["id"], lot=lot_a)) == {(quarantine, lot_a): 40}
    assert recalled["quarantined_quantity"] == 40


def test_a_site_without_a_quarantine_location_cannot_recall_and_nothing_changes(
    catalog, warehouse, database
):
    site = unique("NOQ")
    shelf = catalog.location(kind="storage", site=site)
    catalog.location(kind="staging", site=site)
    catalog.location(kind="quarantine", site=unique("ELSEWHERE"))  # another site's
    item = catalog.item(tracking="lot", category="flush")
    lot = unique("LOT")
    catalog.receive(item, shelf, 10, lot=lot)
    set_reserved(database, item["id"], shelf["id"], 3)
    before = snapshot(warehouse, item)
    traced_before = ok(trace(warehouse, item_id=item["id"], lot=lot))

    refused = problem(recall(warehouse, item, lot), 409)

    assert "quarantine" in refused["detail"]
    assert snapshot(warehouse, item) == before
    traced = ok(trace(warehouse, item_id=item["id"], lot=lot))
    assert traced == traced_before
    assert traced["recalled_at"] is None
    assert places(traced) == [(shelf["id"], "storage", 10)]


@pytest.mark.parametrize(
    "case, field",
    [
        ("unknown lot", "lot"),
        ("item not lot-tracked", "lot"),
        ("unknown item", "item_id"),
        ("no lot given", "lot"),
    ],
)
def test_an_invalid_recall_is_422_and_changes_nothing(pharmacy, case, field):
    p = pharmacy
    body = {
        "unknown lot": {"item_id": p.flush["id"], "lot": "NO-SUCH-LOT"},
        "item not lot-tracked": {"item_id": p.gloves["id"], "lot": p.lots["A"]},
        "unknown item": {"item_id": 999_999_999, "lot": p.lots["A"]},
        "no lot given": {"item_id": p.flush["id"], "note": "which one?"},
    }[case]
    before = (snapshot(p.warehouse, p.flush), snapshot(p.warehouse, p.gloves))

    refused = problem(p.warehouse.post("/recalls", body), 422)

    assert field in refused["errors"]
    assert (snapshot(p.warehouse, p.flush), snapshot(p.warehouse, p.gloves)) == before
    traced = ok(trace(p.warehouse, item_id=p.flush["id"], lot=p.lots["A"]))
    assert traced["recalled_at"] is None


# --- trace -------------------------------------------------------------------------------------


def test_a_pump_traced_by_serial_names_the_kit_and_patient_and_sits_in_staging(pharmacy, kit):
    p = pharmacy
    serial = pump_serial(kit)
    p.pack(p.scan_all(kit))

    traced = ok(trace(p.warehouse, item_id=p.pump["id"], serial=serial))

    assert (traced["item_id"], traced["serial"], traced["lot"]) == (p.pump["id"], serial, None)
    assert traced["status"] == "reserved"
    assert kits_named(traced) == [(kit["id"], kit["number"], p.patient_id)]
    assert traced["kits"][0]["status"] == "packed"
    assert traced["kits"][0]["packed_quantity"] == 1
    assert patients_named(traced) == [(p.patient_id, [kit["id"]])]
    assert places(traced) == [(p.staging["id"], "staging", 1)]
    assert [(r["quantity"], r["location_id"]) for r in traced["received"]] == [(1, p.shelf["id"])]
    assert traced["deliveries"] == []
    # The other pump went nowhere.
    [spare] = [s for s in p.serials if s != serial]
    untouched = ok(trace(p.warehouse, item_id=p.pump["id"], serial=spare))
    assert (untouched["kits"], untouched["patients"]) == ([], [])
    assert places(untouched) == [(p.shelf["id"], "storage", 1)]


def test_the_trace_lists_every_receipt_of_the_lot(pharmacy):
    p = pharmacy
    lot_a = p.receive_flush("A", 10, expiry_in=200, shelf=p.shelf_b)
    receipts = all_pages(p.warehouse, "/movements", item_id=p.flush["id"], lot=lot_a)
    assert [m["type"] for m in receipts] == ["receipt", "receipt"]

    traced = ok(trace(p.warehouse, item_id=p.flush["id"], lot=lot_a))

    assert [
        (r["document_id"], r["type"], r["reference"], r["quantity"], r["location_id"])
        for r in traced["received"]
    ] == [
        (m["document_id"], "receipt", m["reference"], m["quantity"], m["to"]["location_id"])
        for m in receipts
    ]
    assert [(r["quantity"], r["location_id"]) for r in traced["received"]] == [
        (40, p.shelf["id"]),
        (10, p.shelf_b["id"]),
    ]
    assert all(r["reference"] for r in traced["received"])
    assert traced["expiry"] == in_days(200).isoformat()
    # Where the rest is, by location code: bin A-01-… before bin B-01-….
    assert places(traced) == [(p.shelf["id"], "storage", 40), (p.shelf_b["id"], "storage", 10)]
    assert (traced["kits"], traced["patients"], traced["deliveries"]) == ([], [], [])


@pytest.mark.parametrize("case", ["both lot and serial", "neither lot nor serial"])
def test_a_trace_asks_for_exactly_one_of_lot_and_serial(pharmacy, case):
    p = pharmacy
    params = {
        "both lot and serial": {"lot": p.lots["A"], "serial": p.serials[0]},
        "neither lot nor serial": {},
    }[case]

    refused = problem(trace(p.warehouse, item_id=p.flush["id"], **params), 422)

    assert "errors" in refused


@pytest.mark.parametrize(
    "case", ["serial of a lot-tracked item", "lot of a serialized item", "lot of untracked item"]
)
def test_a_trace_by_the_wrong_kind_of_number_is_invalid(pharmacy, case):
    p = pharmacy
    item, params = {
        "serial of a lot-tracked item": (p.flush, {"serial": p.serials[0]}),
        "lot of a serialized item": (p.pump, {"lot": p.lots["A"]}),
        "lot of untracked item": (p.gloves, {"lot": p.lots["A"]}),
    }[case]

    problem(trace(p.warehouse, item_id=item["id"], **params), 422)


@pytest.mark.parametrize("case", ["unknown item", "unknown lot", "unknown serial"])
def test_tracing_what_does_not_exist_is_not_found(pharmacy, case):
    p = pharmacy
    params = {
        "unknown item": {"item_id": 999_999_999, "lot": p.lots["A"]},
        "unknown lot": {"item_id": p.flush["id"], "lot": "NO-SUCH-LOT"},
        "unknown serial": {"item_id": p.pump["id"], "serial": "NO-SUCH-SN"},
    }[case]

    problem(trace(p.warehouse, **params), 404)


def test_the_ledger_filtered_by_kit_or_patient_is_that_kits_picks_only(pharmacy, kit):
    p = pharmacy
    other = another_patient(p)
    _, other_days = p.therapy(3, patient_id=other)
    p.plan()
    other_kit = p.build(other_days, patient_id=other)
    p.pack(p.scan_all(kit))
    p.pack(p.scan_all(other_kit))
    staging, serial = p.staging["id"], pump_serial(kit)

    by_kit = all_pages(p.warehouse, "/movements", kit_id=kit["id"])
    by_patient = all_pages(p.warehouse, "/movements", patient_id=p.patient_id)

    assert sorted(m["id"] for m in by_kit) == sorted(m["id"] for m in by_patient)
    moved: Counter[tuple[Any, ...]] = Counter()
    for m in by_kit:
        key = (m["type"], m["item_id"], m["lot"], m["serial"], m["to"]["location_id"])
        moved[key] += m["quantity"]
    assert moved == Counter(
        {
            ("pick", p.flush["id"], p.lots["A"], None, staging): 8,
            ("pick", p.gloves["id"], None, None, staging): 4,
            ("pick", p.pump["id"], None, serial, staging): 1,
        }
    )
    assert {m["kit_id"] for m in by_kit} == {kit["id"]}
    others = all_pages(p.warehouse, "/movements", patient_id=other)
    assert others and {m["kit_id"] for m in others} == {other_kit["id"]}
    assert all_pages(p.warehouse, "/movements", patient_id=another_patient(p)) == []


# --- roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role, action, status",
    [
        (Role.FINANCE, "trace", 200),
        (Role.FINANCE, "recall", 403),
        (Role.DRIVER, "trace", 403),
        (Role.DRIVER, "recall", 403),
        (Role.COORDINATOR, "trace", 200),
        (Role.COORDINATOR, "recall", 201),
        (Role.ADMIN, "recall", 201),
    ],
)
def test_who_may_trace_and_who_may_recall(pharmacy, as_role, role, action, status):
    p = pharmacy
    api = as_role(role)
    lot_a = p.lots["A"]

    if action == "trace":
        response = trace(api, item_id=p.flush["id"], lot=lot_a)
    else:
        response = recall(api, p.flush, lot_a)

    if status >= 400:
        problem(response, status)
    else:
        body = ok(response, status)
        assert (body["item_id"], body["lot"]) == (p.flush["id"], lot_a)
    traced = ok(trace(p.warehouse, item_id=p.flush["id"], lot=lot_a))
    assert (traced["recalled_at"] is not None) is (action == "recall" and status == 201)


def test_a_recall_without_a_token_is_401(pharmacy, app):
    p = pharmacy
    response = app.test_client().post(
        "/api/v1/recalls", json={"item_id": p.flush["id"], "lot": p.lots["A"]}
    )

    problem(response, 401)
    assert ok(trace(p.warehouse, item_id=p.flush["id"], lot=p.lots["A"]))["recalled_at"] is None
