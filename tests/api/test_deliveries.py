"""Routes, dispatch, delivery confirmation from the phone, failed stops, returns and reversals.

The scenario is kit_builders.Pharmacy (flush lot A at 0.5000 in bin A, gloves at 0.2500 in bin
B, pumps at 900.0000 in bin A, a staging and a quarantine area) with delivery_builders.Rounds
on top: every kit is for a patient of its own, for days in 1 and 2 days (8 flushes, 4 gloves,
1 pump), and every driver at SITE1 has a vehicle location of their own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from inventory.users.models import Role
from tests.api.delivery_builders import (
    MAX_SIGNATURE_BYTES,
    MAX_SIGNATURE_TEXT,
    Driver,
    Rounds,
    b64,
    day_statuses,
    delivered,
    deliveries,
    failed,
    flows,
    flush,
    gloves,
    history,
    jpeg,
    kit_serial,
    legs,
    load,
    moment,
    noisy_png,
    on_hand_at,
    png,
    pump_of,
    route_ids,
    untouched,
)
from tests.api.kit_builders import Pharmacy
from tests.api.ledger_helpers import all_pages, ledger_snapshot
from tests.api.planning_builders import today
from tests.builders import Api, ok, problem

Body = dict[str, Any]


@pytest.fixture
def coordinator(as_role) -> Api:
    return as_role(Role.COORDINATOR)


@pytest.fixture
def rounds(catalog, coordinator, database, as_role) -> Rounds:
    return Rounds(Pharmacy.open(catalog, coordinator, database, pumps=3), as_role, database)


@pytest.fixture
def driver(rounds) -> Driver:
    return rounds.driver()


@pytest.fixture
def kit(rounds) -> Body:
    return rounds.packed_kit()


@pytest.fixture
def road(rounds, driver, kit) -> Body:
    """The driver's route for today with the kit on it, dispatched."""
    return rounds.on_the_road(driver, kit)


# --- vehicles and routes -----------------------------------------------------------------------


def test_a_driver_created_with_a_site_gets_a_vehicle_location_of_their_own(admin, warehouse):
    user = ok(admin.post("/users", {"name": "Van Driver", "role": "driver", "site": "SITE1"}), 201)

    vehicle_id = user["vehicle_location_id"]
    assert vehicle_id is not None
    [vehicle] = [loc for loc in all_pages(warehouse, "/locations") if loc["id"] == vehicle_id]
    assert (vehicle["kind"], vehicle["site"]) == ("vehicle", "SITE1")
    listed = {d["id"]: d["vehicle_location_id"] for d in all_pages(warehouse, "/drivers")}
    assert listed[user["id"]] == vehicle_id


def test_warehouse_assigns_a_vehicle_to_a_driver_without_one_before_dispatch(rounds, kit):
    p, w = rounds.p, rounds.warehouse
    driver = rounds.driver(site=None)
    assert driver.vehicle_id is None
    route = rounds.route(driver, kit)

    problem(w.post(f"/routes/{route['id']}/dispatch"), 409)
    assert rounds.kit(kit)["status"] == "packed"
    assert on_hand_at(w, p.staging["id"]) == load(kit)

    patch = f"/drivers/{driver.id}"
    problem(w.patch(patch, {"vehicle_location_id": p.shelf["id"]}), 422)
    problem(driver.api.patch(patch, {"vehicle_location_id": p.shelf["id"]}), 403)
    van = p.catalog.location(kind="vehicle")
    assert (
        ok(w.patch(patch, {"vehicle_location_id": van["id"]}))["vehicle_location_id"] == van["id"]
    )

    dispatched = rounds.dispatch(route)

    assert dispatched["vehicle_location_id"] == van["id"]
    assert on_hand_at(w, van["id"]) == load(kit)
    assert on_hand_at(w, p.staging["id"]) == {}


def test_a_route_keeps_the_stop_order_and_dispatch_moves_staging_to_the_vehicle(rounds, driver):
    p, w = rounds.p, rounds.warehouse
    first, second = rounds.packed_kit(), rounds.packed_kit()

    route = rounds.route(driver, second, first)

    assert (route["status"], route["driver_id"], route["date"]) == (
        "planned",
        driver.id,
        today().isoformat(),
    )
    stops = [(s["sequence"], s["kit_id"], s["kit_number"], s["status"]) for s in route["stops"]]
    assert stops == [
        (1, second["id"], second["number"], "pending"),
        (2, first["id"], first["number"], "pending"),
    ]

    dispatched = rounds.dispatch(route)

    assert dispatched["status"] == "dispatched"
    assert dispatched["vehicle_location_id"] == driver.vehicle_id
    assert [s["kit_status"] for s in dispatched["stops"]] == ["dispatched", "dispatched"]
    assert [rounds.kit(k)["status"] for k in (first, second)] == ["dispatched", "dispatched"]
    expected = legs(first, "dispatch", p.staging["id"], driver.vehicle_id)
    for key, quantity in legs(second, "dispatch", p.staging["id"], driver.vehicle_id).items():
        expected[key] = expected.get(key, 0) + quantity
    assert flows(w, type="dispatch") == expected
    assert on_hand_at(w, p.staging["id"]) == {}
    on_vehicle = {key: 2 * quantity for key, quantity in load(first).items()}
    assert on_hand_at(w, driver.vehicle_id) == on_vehicle
    problem(w.post(f"/routes/{route['id']}/dispatch"), 409)


def test_a_route_takes_packed_kits_once_each_for_an_active_driver_from_today(rounds, driver, kit):
    p, w = rounds.p, rounds.warehouse
    patient_id = rounds.patient()
    _, days = p.therapy(3, patient_id=patient_id)
    p.plan()
    open_kit = p.build(days, patient_id=patient_id)
    warehouse_user = ok(w.get("/me"))

    problem(rounds.route_response(driver, open_kit), 409)
    problem(rounds.route_response(driver, kit, kit), 422)
    problem(rounds.route_response(driver, kit, on=today() - timedelta(days=1)), 422)
    not_a_driver = Driver(w, warehouse_user["id"], None)
    problem(rounds.route_response(not_a_driver, kit), 422)
    problem(rounds.route_response(rounds.driver(site="SITE2"), kit), 422)
    problem(rounds.route_response(driver, kit, api=driver.api), 403)
    assert route_ids(w) == []

    rounds.route(driver, kit)
    problem(rounds.route_response(rounds.driver(), kit), 409)


def test_a_stop_shows_the_address_kit_number_and_items_and_nothing_else_about_the_patient(
    rounds, driver
):
    patient_id = rounds.patient(name="Zelda Quixote-Marsh", phone="+1-512-555-0199")
    kit = rounds.packed_kit(patient_id=patient_id)
    route = rounds.route(driver, kit)

    response = driver.api.get(f"/routes/{route['id']}")

    [stop] = ok(response)["stops"]
    assert {"sequence", "kit_id", "kit_number", "status", "address", "items"} <= set(stop)
    patient_keys = {"patient_id", "patient", "patient_name", "name", "phone", "external_ref"}
    assert not patient_keys & set(stop)
    assert stop["address"] == {
        "line1": "100 Congress Ave",
        "line2": None,
        "city": "Austin",
        "state": "TX",
        "postal_code": "78701",
    }
    assert stop["kit_number"] == kit["number"]
    items = {(i["item_id"], i["lot"], i["serial"]): i["quantity"] for i in stop["items"]}
    assert items == {
        (ln["item_id"], ln["lot"], ln["serial"]): ln["quantity"] for ln in kit["lines"]
    }
    listing = driver.api.get("/routes")
    for text in (response.get_data(as_text=True), listing.get_data(as_text=True)):
        for secret in ("Zelda", "Quixote", "555-0199", "patient_id", "MRN-", "phone"):
            assert secret not in text


# --- a driver reaches only their own routes and kits -------------------------------------------


def test_a_driver_lists_only_their_own_routes(rounds):
    alice, bob = rounds.driver(), rounds.driver()
    alices = rounds.route(alice, rounds.packed_kit())
    bobs = rounds.route(bob, rounds.packed_kit())

    assert route_ids(alice.api) == [alices["id"]]
    assert route_ids(bob.api) == [bobs["id"]]
    assert route_ids(bob.api, driver_id=alice.id) == [bobs["id"]]
    assert route_ids(bob.api, date=today().isoformat()) == [bobs["id"]]
    assert route_ids(rounds.warehouse) == [alices["id"], bobs["id"]]
    assert route_ids(rounds.warehouse, driver_id=alice.id) == [alices["id"]]


@pytest.mark.parametrize("stage", ["planned", "dispatched", "delivered"])
def test_another_drivers_route_and_kit_answer_404_to_every_driver_operation(rounds, stage):
    alice, bob = rounds.driver(), rounds.driver()
    alices_kit, bobs_kit = rounds.packed_kit(), rounds.packed_kit()
    alices = rounds.route(alice, alices_kit)
    bobs = rounds.route(bob, bobs_kit)
    if stage != "planned":
        rounds.dispatch(alices)
    body = delivered()
    if stage == "delivered":  # under a key Bob will send too: keys belong to their user
        ok(rounds.confirm(alice, alices_kit, body, key="door-42"), 201)
    kit_id = alices_kit["id"]
    before = untouched(rounds, alices_kit)

    operations = {
        "GET /routes/{id}": lambda: bob.api.get(f"/routes/{alices['id']}"),
        "POST /kits/{id}/delivery": lambda: rounds.confirm(bob, alices_kit, body, key="door-42"),
        "GET /kits/{id}/delivery": lambda: bob.api.get(f"/kits/{kit_id}/delivery"),
        "POST /kits/{id}/returns": lambda: rounds.give_back(
            bob, alices_kit, [gloves(rounds, 1, "unopened")]
        ),
        "GET /kits/{id}/returns": lambda: bob.api.get(f"/kits/{kit_id}/returns"),
    }
    answers = {name: call().status_code for name, call in operations.items()}

    assert answers == dict.fromkeys(operations, 404)
    assert untouched(rounds, alices_kit) == before
    ok(bob.api.get(f"/routes/{bobs['id']}"))
    ok(alice.api.get(f"/routes/{alices['id']}"))
    ok(alice.api.get(f"/kits/{kit_id}/delivery"))


# --- delivered ---------------------------------------------------------------------------------


def test_a_delivery_moves_the_stock_from_the_vehicle_to_the_patient(rounds, driver, kit, road):
    w = rounds.warehouse
    assert on_hand_at(w, driver.vehicle_id) == load(kit)

    out = rounds.deliver(driver, kit, recipient_name="Sam Neighbour", relationship="neighbour")

    assert {k: out[k] for k in ("kit_id", "route_id", "driver_id", "outcome")} == {
        "kit_id": kit["id"],
        "route_id": road["id"],
        "driver_id": driver.id,
        "outcome": "delivered",
    }
    assert (out["recipient_name"], out["relationship"]) == ("Sam Neighbour", "neighbour")
    assert (out["has_signature"], out["failure_reason"], out["reversed"]) == (True, None, False)
    assert (out["latitude"], out["longitude"]) == (None, None)
    staging = rounds.p.staging["id"]
    picked = {
        ("pick", ln["item_id"], ln["lot"], ln["serial"], ln["location_id"], staging): ln["quantity"]
        for ln in kit["lines"]
    }
    assert flows(w, kit_id=kit["id"]) == {
        **picked,
        **legs(kit, "dispatch", staging, driver.vehicle_id),
        **legs(kit, "delivery", driver.vehicle_id, "patient"),
    }
    patient_id = rounds.kit(kit)["patient_id"]
    assert flows(w, patient_id=patient_id, type="delivery") == flows(w, type="delivery")
    assert on_hand_at(w, driver.vehicle_id) == {}
    assert rounds.kit(kit)["status"] == "delivered"
    assert day_statuses(rounds, kit) == ["delivered", "delivered"]
    route = ok(driver.api.get(f"/routes/{road['id']}"))
    assert (route["status"], route["stops"][0]["status"]) == ("completed", "delivered")
    assert deliveries(driver.api, kit) == [out]


def test_delivered_equipment_is_at_the_patient_from_the_delivery_date(rounds, driver, kit, road):
    rounds.deliver(driver, kit)

    pump = ok(rounds.warehouse.get(f"/equipment/{pump_of(rounds, kit)['id']}"))
    patient_id = rounds.kit(kit)["patient_id"]
    assert (pump["status"], pump["patient_id"]) == ("at_patient", patient_id)
    periods = history(rounds, kit)["patients"]
    assert periods == [{"patient_id": patient_id, "from": today().isoformat(), "to": None}]


def test_a_confirmation_synced_late_is_dated_when_it_happened(rounds, driver, kit, road):
    w = rounds.warehouse
    rounds.backdate_dispatch(road, days=2)
    yesterday = (today() - timedelta(days=1)).isoformat()

    rounds.deliver(driver, kit, occurred_at=moment(days=-1))

    dates = {m["occurred_at"][:10] for m in all_pages(w, "/movements", type="delivery")}
    assert dates == {yesterday}
    patient_id = rounds.kit(kit)["patient_id"]
    assert history(rounds, kit)["patients"] == [
        {"patient_id": patient_id, "from": yesterday, "to": None}
    ]
    line = {"item_id": rounds.p.pump["id"], "serial": kit_serial(kit), "quantity": 1}
    ok(rounds.give_back(driver, kit, [{**line, "condition": "opened"}]), 201)
    assert history(rounds, kit)["patients"] == [
        {"patient_id": patient_id, "from": yesterday, "to": today().isoformat()}
    ]


@pytest.mark.parametrize("size", [(20, 20), (4000, 20), (20, 4000)], ids=str)
def test_a_signature_of_any_sane_size_is_accepted(rounds, driver, kit, road, size):
    signature = png(*size)

    out = rounds.deliver(driver, kit, signature=b64(signature))

    assert rounds.warehouse.get(f"/deliveries/{out['id']}/signature").get_data() == signature


def test_the_signature_reads_back_byte_for_byte_for_warehouse_and_admin_only(
    rounds, driver, kit, road, admin
):
    signature = png(320, 120)
    out = rounds.deliver(driver, kit, signature=b64(signature))
    path = f"/deliveries/{out['id']}/signature"

    for api in (rounds.warehouse, admin):
        response = api.get(path)
        assert response.status_code == 200
        assert response.mimetype == "image/png"
        assert response.get_data() == signature
    problem(driver.api.get(path), 403)
    problem(rounds.warehouse.get(f"/deliveries/{out['id'] + 1000}/signature"), 404)


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [("30.267153", "-97.743057"), ("90", "-180"), ("-90", "180")],
    ids=["austin", "north-west-edge", "south-east-edge"],
)
def test_gps_is_optional_and_kept_when_both_coordinates_are_given(
    rounds, driver, kit, road, latitude, longitude
):
    out = rounds.deliver(driver, kit, latitude=float(latitude), longitude=float(longitude))

    assert (Decimal(out["latitude"]), Decimal(out["longitude"])) == (
        Decimal(latitude),
        Decimal(longitude),
    )
    [listed] = deliveries(rounds.warehouse, kit)
    assert (listed["latitude"], listed["longitude"]) == (out["latitude"], out["longitude"])


@pytest.mark.parametrize(
    "gps",
    [
        {"latitude": 30.2},
        {"longitude": -97.7},
        {"latitude": 90.5, "longitude": 0},
        {"latitude": -90.01, "longitude": 0},
        {"latitude": 0, "longitude": 180.5},
        {"latitude": 0, "longitude": -181},
    ],
    ids=["latitude-only", "longitude-only", "lat>90", "lat<-90", "lon>180", "lon<-180"],
)
def test_gps_must_come_as_a_pair_within_range(rounds, driver, kit, road, gps):
    before = untouched(rounds, kit)

    refused = problem(rounds.confirm(driver, kit, delivered(**gps)), 422)

    assert set(refused["errors"]) & {"latitude", "longitude"}
    assert untouched(rounds, kit) == before


def test_occurred_at_may_run_5_minutes_ahead_but_not_more_nor_before_dispatch(
    rounds, driver, kit, road
):
    before = untouched(rounds, kit)
    dispatched_at = datetime.fromisoformat(road["dispatched_at"])
    naive = datetime.now(UTC).replace(tzinfo=None).isoformat()

    for occurred_at in (
        moment(minutes=6),
        moment(days=1),
        (dispatched_at - timedelta(seconds=1)).isoformat(),
        moment(days=-1),
        naive,
        "yesterday",
    ):
        refused = problem(rounds.confirm(driver, kit, delivered(occurred_at=occurred_at)), 422)
        assert "occurred_at" in refused["errors"], occurred_at
    skewed = failed(occurred_at=moment(minutes=10))
    problem(rounds.confirm(driver, kit, skewed, key="retry-after-422"), 422)
    assert untouched(rounds, kit) == before

    # only a success is kept under a key: the phone may retry the same key with a fixed body
    ahead = datetime.now(UTC) + timedelta(minutes=4)
    tokyo = ahead.astimezone(timezone(timedelta(hours=9))).isoformat()
    body = delivered(occurred_at=tokyo)
    out = ok(rounds.confirm(driver, kit, body, key="retry-after-422"), 201)
    assert out["outcome"] == "delivered"
    assert datetime.fromisoformat(out["occurred_at"]) == ahead


@pytest.mark.parametrize(
    "signature",
    [
        "this is not base64!",
        b64(b"hello, I am not an image"),
        b64(jpeg()),
        b64(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 40),
        b64(png()[:-30]),
        b64(png(10, 10)),
        b64(png(19, 100)),
        b64(png(4001, 20)),
        "",
    ],
    ids=[
        "bad-base64",
        "text",
        "jpeg",
        "png-magic-garbage",
        "truncated",
        "tiny",
        "narrow",
        "wide",
        "empty",
    ],
)
def test_a_signature_that_is_not_a_sane_png_is_422(rounds, driver, kit, road, signature):
    before = untouched(rounds, kit)

    refused = problem(rounds.confirm(driver, kit, delivered(signature=signature)), 422)

    assert "signature" in refused["errors"]
    assert untouched(rounds, kit) == before


def test_a_signature_over_200_kb_is_413(rounds, driver, kit, road):
    data = noisy_png()
    assert len(data) > MAX_SIGNATURE_BYTES and len(b64(data)) < MAX_SIGNATURE_TEXT
    before = untouched(rounds, kit)

    problem(rounds.confirm(driver, kit, delivered(signature=b64(data))), 413)

    assert untouched(rounds, kit) == before
    assert on_hand_at(rounds.warehouse, driver.vehicle_id) == load(kit)


def without(name: str) -> Body:
    return {k: v for k, v in delivered().items() if k != name}


@pytest.mark.parametrize(
    "make",
    [
        lambda: without("signature"),
        lambda: without("recipient_name"),
        lambda: without("relationship"),
        lambda: without("occurred_at"),
        lambda: delivered(failure_reason="not_home"),
        lambda: {"outcome": "failed", "occurred_at": moment()},
        lambda: failed("dog ate it"),
        lambda: delivered(outcome="lost"),
        lambda: delivered(signature=b64(png()), recipient_name="x" * 121),
    ],
    ids=[
        "no-signature",
        "no-recipient",
        "no-relationship",
        "no-occurred-at",
        "delivered-with-reason",
        "failed-without-reason",
        "unknown-reason",
        "unknown-outcome",
        "recipient-too-long",
    ],
)
def test_an_incomplete_confirmation_is_422(rounds, driver, kit, road, make):
    before = untouched(rounds, kit)

    problem(rounds.confirm(driver, kit, make()), 422)

    assert untouched(rounds, kit) == before


def test_a_confirmation_or_return_without_an_idempotency_key_is_400(rounds, driver, kit, road):
    before = untouched(rounds, kit)

    refused = problem(rounds.confirm(driver, kit, delivered(), key=None), 400)

    assert "Idempotency-Key" in refused.get("errors", {})
    assert untouched(rounds, kit) == before
    rounds.deliver(driver, kit)
    before = untouched(rounds, kit)
    problem(rounds.give_back(driver, kit, [gloves(rounds, 1, "unopened")], key=None), 400)
    assert untouched(rounds, kit) == before


def test_only_a_dispatched_kit_is_confirmed(rounds, driver, kit):
    route = rounds.route(driver, kit)

    problem(rounds.confirm(driver, kit, delivered()), 409)
    assert rounds.kit(kit)["status"] == "packed"

    rounds.dispatch(route)
    rounds.deliver(driver, kit)
    before = untouched(rounds, kit)
    problem(rounds.confirm(driver, kit, delivered()), 409)
    problem(rounds.confirm(driver, kit, failed()), 409)
    assert untouched(rounds, kit) == before


# --- idempotency -------------------------------------------------------------------------------


def test_a_confirmation_replayed_5_times_answers_the_first_response_and_delivers_once(
    rounds, driver, kit, road, database
):
    w = rounds.warehouse
    body = delivered()
    first = rounds.confirm(driver, kit, body, key="phone-retry-1")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    snapshot = ledger_snapshot(w, database)

    for _ in range(5):
        replay = rounds.confirm(driver, kit, body, key="phone-retry-1")
        assert replay.status_code == 201
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.get_json() == first.get_json()

    assert ledger_snapshot(w, database) == snapshot
    assert [d["id"] for d in deliveries(w, kit)] == [first.get_json()["id"]]
    assert flows(w, kit_id=kit["id"], type="delivery") == legs(
        kit, "delivery", driver.vehicle_id, "patient"
    )
    ok(rounds.reverse(kit))  # a late retry after a reversal must not deliver it again
    late = rounds.confirm(driver, kit, body, key="phone-retry-1")
    assert (late.status_code, late.get_json()) == (201, first.get_json())
    assert rounds.kit(kit)["status"] == "dispatched"
    assert on_hand_at(w, driver.vehicle_id) == load(kit)


def test_the_same_key_with_a_different_body_or_kit_is_422(rounds, driver, kit):
    other = rounds.packed_kit()
    rounds.on_the_road(driver, kit, other)
    body = delivered()
    ok(rounds.confirm(driver, kit, body, key="phone-key-7"), 201)
    before = untouched(rounds, kit), untouched(rounds, other)

    for target, changed in (
        (kit, {**body, "recipient_name": "Someone Else"}),
        (kit, failed()),
        (other, body),
    ):
        refused = problem(rounds.confirm(driver, target, changed, key="phone-key-7"), 422)
        assert "Idempotency-Key" in refused["errors"]

    assert (untouched(rounds, kit), untouched(rounds, other)) == before
    assert rounds.kit(other)["status"] == "dispatched"


def test_a_return_replayed_answers_the_first_response_and_books_once(
    rounds, driver, kit, road, database
):
    w = rounds.warehouse
    rounds.deliver(driver, kit)
    lines = [flush(rounds, 2, "unopened")]
    first = rounds.give_back(driver, kit, lines, key="return-1")
    assert first.status_code == 201
    snapshot = ledger_snapshot(w, database)

    for _ in range(3):
        replay = rounds.give_back(driver, kit, lines, key="return-1")
        assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (201, "true")
        assert replay.get_json() == first.get_json()
    problem(rounds.give_back(driver, kit, [flush(rounds, 3, "unopened")], key="return-1"), 422)

    assert ledger_snapshot(w, database) == snapshot
    assert on_hand_at(w, rounds.p.quarantine["id"]) == {
        (rounds.p.flush["id"], rounds.p.lots["A"]): 2
    }


# --- failed ------------------------------------------------------------------------------------


def test_a_failed_stop_records_the_reason_and_the_stock_stays_on_the_vehicle(
    rounds, driver, kit, road
):
    w = rounds.warehouse
    ledger_before = flows(w, kit_id=kit["id"])
    pump_before = pump_of(rounds, kit)

    out = rounds.fail(driver, kit, "refused")

    assert (out["outcome"], out["failure_reason"], out["has_signature"]) == (
        "failed",
        "refused",
        False,
    )
    problem(w.get(f"/deliveries/{out['id']}/signature"), 404)
    assert rounds.kit(kit)["status"] == "failed"
    assert day_statuses(rounds, kit) == ["packed", "packed"]
    assert flows(w, kit_id=kit["id"]) == ledger_before
    assert flows(w, type="delivery") == {}
    assert on_hand_at(w, driver.vehicle_id) == load(kit)
    assert pump_of(rounds, kit) == pump_before
    route = ok(driver.api.get(f"/routes/{road['id']}"))
    assert route["stops"][0]["status"] == "failed"
    problem(rounds.confirm(driver, kit, delivered()), 409)
    problem(rounds.give_back(driver, kit, [gloves(rounds, 1, "unopened")]), 409)
    assert on_hand_at(w, driver.vehicle_id) == load(kit)


def test_a_failed_kit_rides_again_with_another_driver_vehicle_to_vehicle(rounds, driver, kit, road):
    w = rounds.warehouse
    rounds.fail(driver, kit)
    bob = rounds.driver()

    second = rounds.route(bob, kit)
    assert second["stops"][0]["kit_status"] == "failed"
    rounds.dispatch(second)

    assert flows(w, type="dispatch", location_id=bob.vehicle_id) == legs(
        kit, "dispatch", driver.vehicle_id, bob.vehicle_id
    )
    assert on_hand_at(w, driver.vehicle_id) == {}
    assert on_hand_at(w, bob.vehicle_id) == load(kit)
    assert rounds.kit(kit)["status"] == "dispatched"
    problem(rounds.confirm(driver, kit, delivered()), 404)

    out = rounds.deliver(bob, kit)

    assert (out["route_id"], out["driver_id"]) == (second["id"], bob.id)
    assert flows(w, kit_id=kit["id"], type="delivery") == legs(
        kit, "delivery", bob.vehicle_id, "patient"
    )
    assert on_hand_at(w, bob.vehicle_id) == {}
    outcomes = [(d["outcome"], d["driver_id"]) for d in deliveries(w, kit)]
    assert outcomes == [("failed", driver.id), ("delivered", bob.id)]


def test_a_failed_kit_is_cancelled_from_the_vehicle_back_to_its_original_bins(
    rounds, driver, kit, road
):
    p, w = rounds.p, rounds.warehouse
    rounds.fail(driver, kit)
    bins = {line["item_id"]: line["location_id"] for line in kit["lines"]}
    assert bins == {
        p.flush["id"]: p.shelf["id"],
        p.gloves["id"]: p.shelf_b["id"],
        p.pump["id"]: p.shelf["id"],
    }
    shelf, shelf_b = on_hand_at(w, p.shelf["id"]), on_hand_at(w, p.shelf_b["id"])

    cancelled = ok(w.post(f"/kits/{kit['id']}/cancel", {"reason": "patient admitted"}))

    assert cancelled["status"] == "cancelled"
    assert on_hand_at(w, driver.vehicle_id) == {}
    back = {
        key: quantity
        for key, quantity in flows(w, kit_id=kit["id"]).items()
        if key[4] == driver.vehicle_id
    }
    expected = {}
    for line in kit["lines"]:
        key = (
            line["item_id"],
            line["lot"],
            line["serial"],
            driver.vehicle_id,
            bins[line["item_id"]],
        )
        expected[key] = expected.get(key, 0) + line["quantity"]
    assert {key[1:]: quantity for key, quantity in back.items()} == expected
    for key, quantity in load(kit).items():
        where = shelf_b if key[0] == p.gloves["id"] else shelf
        where[key] = where.get(key, 0) + quantity
    assert on_hand_at(w, p.shelf["id"]) == shelf
    assert on_hand_at(w, p.shelf_b["id"]) == shelf_b
    assert pump_of(rounds, kit)["patient_id"] is None


# --- returns -----------------------------------------------------------------------------------


def test_returns_go_to_quarantine_or_disposal_valued_at_the_delivered_cost(
    rounds, driver, kit, road
):
    p, w = rounds.p, rounds.warehouse
    lot = p.lots["A"]
    rounds.deliver(driver, kit)
    p.receive_flush(
        "A", 10, expiry_in=200, unit_cost="0.9000"
    )  # dearer now: not what was delivered
    lines = [
        flush(rounds, 3, "unopened"),
        flush(rounds, 1, "opened"),
        gloves(rounds, 2, "damaged"),
        gloves(rounds, 1, "expired"),
    ]

    out = ok(rounds.give_back(driver, kit, lines, sharps_containers=2), 201)

    assert (out["kit_id"], out["sharps_containers"]) == (kit["id"], 2)
    assert (Decimal(out["credit_value"]), Decimal(out["waste_value"])) == (
        Decimal("1.50"),
        Decimal("1.25"),
    )
    summary = [
        (
            line["item_id"],
            line["lot"],
            line["quantity"],
            line["condition"],
            line["disposition"],
            Decimal(line["unit_cost"]),
            Decimal(line["total_cost"]),
        )
        for line in out["lines"]
    ]
    assert sorted(summary, key=str) == sorted(
        [
            (p.flush["id"], lot, 3, "unopened", "quarantine", Decimal("0.5"), Decimal("1.5")),
            (p.flush["id"], lot, 1, "opened", "disposal", Decimal("0.5"), Decimal("0.5")),
            (p.gloves["id"], None, 2, "damaged", "disposal", Decimal("0.25"), Decimal("0.5")),
            (p.gloves["id"], None, 1, "expired", "disposal", Decimal("0.25"), Decimal("0.25")),
        ],
        key=str,
    )
    quarantine = p.quarantine["id"]
    assert flows(w, kit_id=kit["id"], type="return") == {
        ("return", p.flush["id"], lot, None, "patient", quarantine): 3,
        ("return", p.flush["id"], lot, None, "patient", "disposal"): 1,
        ("return", p.gloves["id"], None, None, "patient", "disposal"): 3,
    }
    costs = {
        (m["item_id"], Decimal(m["unit_cost"]))
        for m in all_pages(w, "/movements", kit_id=kit["id"], type="return")
    }
    assert costs == {(p.flush["id"], Decimal("0.5")), (p.gloves["id"], Decimal("0.25"))}
    assert on_hand_at(w, quarantine) == {(p.flush["id"], lot): 3}
    assert rounds.kit(kit)["status"] == "returned"
    assert ok(driver.api.get(f"/kits/{kit['id']}/returns"))["items"] == [out]


@pytest.mark.parametrize(
    ("line", "extra", "field"),
    [
        ({"lot": None}, {}, "lines.0.lot"),
        ({"lot": "NO-SUCH-LOT"}, {}, "lines.0.lot"),
        ({"quantity": 0}, {}, "lines.0.quantity"),
        ({"condition": "soggy"}, {}, "lines.0.condition"),
        ({"item_id": 10**9}, {}, "lines.0.item_id"),
        ({"serial": "SN-1"}, {}, "lines.0.serial"),
        ({}, {"sharps_containers": -1}, "sharps_containers"),
        ({}, {"occurred_at": "NOW+6"}, "occurred_at"),
        ({}, {"lines": []}, "lines"),
    ],
    ids=[
        "no-lot",
        "unknown-lot",
        "zero",
        "bad-condition",
        "unknown-item",
        "serial-on-lot-item",
        "negative-sharps",
        "future",
        "no-lines",
    ],
)
def test_a_malformed_return_is_422(rounds, driver, kit, road, line, extra, field):
    rounds.deliver(driver, kit)
    before = untouched(rounds, kit)
    sent = {k: v for k, v in {**flush(rounds, 1, "unopened"), **line}.items() if v is not None}
    body = {"lines": [sent], "sharps_containers": 0, **extra}
    if body.get("occurred_at") == "NOW+6":
        body["occurred_at"] = moment(minutes=6)
    headers = {"Idempotency-Key": uuid.uuid4().hex}

    refused = problem(driver.api.post(f"/kits/{kit['id']}/returns", body, headers=headers), 422)

    assert field in refused["errors"]
    assert untouched(rounds, kit) == before


def test_returning_more_than_was_delivered_is_409(rounds, driver, kit, road):
    p, w = rounds.p, rounds.warehouse
    rounds.deliver(driver, kit)
    other_lot = p.receive_flush("B", 5, expiry_in=300)
    before = untouched(rounds, kit)

    problem(rounds.give_back(driver, kit, [flush(rounds, 9, "unopened")]), 409)
    problem(rounds.give_back(driver, kit, [gloves(rounds, 5, "opened")]), 409)
    not_delivered = {**flush(rounds, 1, "unopened"), "lot": other_lot}
    problem(rounds.give_back(driver, kit, [not_delivered]), 409)
    two_lines = [flush(rounds, 5, "unopened"), flush(rounds, 4, "opened")]
    problem(rounds.give_back(driver, kit, two_lines), 409)
    assert untouched(rounds, kit) == before

    ok(rounds.give_back(driver, kit, [flush(rounds, 6, "opened")]), 201)
    refused = problem(
        rounds.give_back(driver, kit, [gloves(rounds, 1, "unopened"), flush(rounds, 3, "opened")]),
        409,
    )
    assert "2" in refused["detail"]
    ok(rounds.give_back(driver, kit, [flush(rounds, 2, "unopened")]), 201)
    problem(rounds.give_back(driver, kit, [flush(rounds, 1, "opened")]), 409)

    assert on_hand_at(w, p.quarantine["id"]) == {(p.flush["id"], p.lots["A"]): 2}
    assert flows(w, kit_id=kit["id"], type="return") == {
        ("return", p.flush["id"], p.lots["A"], None, "patient", "disposal"): 6,
        ("return", p.flush["id"], p.lots["A"], None, "patient", p.quarantine["id"]): 2,
    }


@pytest.mark.parametrize("cleaning_area", [True, False], ids=["cleaning", "no-cleaning"])
def test_returned_equipment_is_dirty_and_its_patient_period_ends(
    rounds, driver, kit, road, cleaning_area
):
    p, w = rounds.p, rounds.warehouse
    cleaning = p.catalog.location(kind="cleaning") if cleaning_area else None
    target = (cleaning or p.quarantine)["id"]
    rounds.deliver(driver, kit)
    serial = kit_serial(kit)
    line = {"item_id": p.pump["id"], "serial": serial, "quantity": 1, "condition": "opened"}

    out = ok(rounds.give_back(driver, kit, [line]), 201)

    [returned] = out["lines"]
    assert (returned["serial"], returned["disposition"], Decimal(returned["unit_cost"])) == (
        serial,
        "cleaning",
        Decimal("900"),
    )
    pump = ok(w.get(f"/equipment/{pump_of(rounds, kit)['id']}"))
    assert (pump["status"], pump["patient_id"], pump["location_id"]) == ("dirty", None, target)
    patient_id = rounds.kit(kit)["patient_id"]
    day = today().isoformat()
    assert history(rounds, kit)["patients"] == [{"patient_id": patient_id, "from": day, "to": day}]
    assert flows(w, kit_id=kit["id"], type="return") == {
        ("return", p.pump["id"], None, serial, "patient", target): 1
    }
    assert on_hand_at(w, target) == {(p.pump["id"], None): 1}
    problem(rounds.give_back(driver, kit, [line]), 409)


# --- reversal ----------------------------------------------------------------------------------


def test_a_reversal_moves_the_stock_back_to_the_vehicle_and_the_kit_can_be_confirmed_again(
    rounds, driver, kit, road
):
    w = rounds.warehouse
    first = rounds.deliver(driver, kit)

    reversed_kit = ok(rounds.reverse(kit, "signed at the wrong house"))

    assert reversed_kit["status"] == "dispatched"
    assert day_statuses(rounds, kit) == ["packed", "packed"]
    assert flows(w, kit_id=kit["id"], type="reversal") == legs(
        kit, "reversal", "patient", driver.vehicle_id
    )
    assert on_hand_at(w, driver.vehicle_id) == load(kit)

    def costs(kind: str) -> list[tuple[Any, ...]]:
        rows = all_pages(w, "/movements", kit_id=kit["id"], type=kind)
        return sorted((m["item_id"], m["serial"], m["unit_cost"], m["quantity"]) for m in rows)

    assert costs("reversal") == costs("delivery")
    pump = pump_of(rounds, kit)
    assert (pump["status"], pump["patient_id"]) == ("reserved", None)
    assert all(period["to"] is not None for period in history(rounds, kit)["patients"])
    [listed] = deliveries(w, kit)
    assert (listed["id"], listed["reversed"], listed["reversal_reason"]) == (
        first["id"],
        True,
        "signed at the wrong house",
    )
    route = ok(driver.api.get(f"/routes/{road['id']}"))
    assert (route["status"], route["stops"][0]["status"]) == ("dispatched", "pending")

    second = rounds.deliver(driver, kit)

    assert second["id"] != first["id"]
    assert rounds.kit(kit)["status"] == "delivered"
    assert day_statuses(rounds, kit) == ["delivered", "delivered"]
    assert on_hand_at(w, driver.vehicle_id) == {}
    delivered_twice = {
        k: 2 * q for k, q in legs(kit, "delivery", driver.vehicle_id, "patient").items()
    }
    assert flows(w, kit_id=kit["id"], type="delivery") == delivered_twice
    assert pump_of(rounds, kit)["status"] == "at_patient"


def test_only_a_delivered_kit_is_reversed_by_warehouse_or_admin(rounds, driver, kit, road, admin):
    path = f"/kits/{kit['id']}/delivery/reversal"
    problem(rounds.reverse(kit), 409)
    rounds.deliver(driver, kit)

    problem(driver.api.post(path, {"reason": "mine"}), 403)
    problem(rounds.warehouse.post(path, {}), 422)
    assert rounds.kit(kit)["status"] == "delivered"
    assert ok(admin.post(path, {"reason": "wrong kit scanned"}))["status"] == "dispatched"
    problem(rounds.reverse(kit), 409)

    rounds.deliver(driver, kit)
    ok(rounds.give_back(driver, kit, [gloves(rounds, 1, "opened")]), 201)
    before = untouched(rounds, kit)
    problem(rounds.reverse(kit), 409)
    assert untouched(rounds, kit) == before
