"""/metrics: requests by endpoint and status, committed ledger movements by type, planning
shortfalls and idempotent replays. Counters are process-wide, so each test compares the
value before and after what it does."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from inventory.users.models import Role
from tests.api.kit_builders import Pharmacy
from tests.builders import Api, Catalog, ok, problem


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def delta(name: str, **labels: str) -> Callable[[], float]:
    before = sample(name, **labels)
    return lambda: sample(name, **labels) - before


@pytest.fixture
def coordinator(as_role) -> Api:
    return as_role(Role.COORDINATOR)


def test_requests_are_counted_by_url_rule_and_status(warehouse: Api, catalog: Catalog):
    item = catalog.item()
    found = delta(
        "inventory_http_requests_total",
        method="GET",
        endpoint="/api/v1/items/<int(min=1, max=2147483647):item_id>",
        status="200",
    )
    missing = delta(
        "inventory_http_requests_total",
        method="GET",
        endpoint="/api/v1/items/<int(min=1, max=2147483647):item_id>",
        status="404",
    )
    ok(warehouse.get(f"/items/{item['id']}"))
    ok(warehouse.get(f"/items/{item['id']}"))
    problem(warehouse.get("/items/999999"), 404)
    assert (found(), missing()) == (2, 1)


def test_the_metrics_page_shows_the_counters(app, warehouse: Api, catalog: Catalog):
    catalog.item()
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert "inventory_http_requests_total{" in text
    assert "inventory_http_request_duration_seconds_bucket{" in text


def test_committed_movements_are_counted_by_type_and_refused_ones_are_not(
    warehouse: Api, catalog: Catalog
):
    shelf = catalog.location()
    item = catalog.item(tracking="none")
    receipts = delta("inventory_ledger_movements_total", type="receipt")
    adjustments = delta("inventory_ledger_movements_total", type="adjustment")
    catalog.receive(item, shelf, 5)
    body = {
        "reason": "lost",
        "lines": [{"item_id": item["id"], "location_id": shelf["id"], "quantity_delta": -50}],
    }
    problem(warehouse.post("/adjustments", body), 409)
    assert (receipts(), adjustments()) == (1, 0)


def test_a_replay_is_counted_once_per_replayed_request(warehouse: Api, catalog: Catalog):
    body = {"code": "BIN-METRICS", "name": "bin", "kind": "storage", "site": "SITE1"}
    replays = delta("inventory_idempotent_replays_total", endpoint="/api/v1/locations")
    headers = {"Idempotency-Key": "metrics-replay"}
    first = warehouse.post("/locations", body, headers=headers)
    again = warehouse.post("/locations", body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert replays() == 1


def test_planning_shortfalls_are_counted(catalog: Catalog, coordinator: Api, database):
    pharmacy = Pharmacy.open(catalog, coordinator, database, pumps=0)
    pharmacy.therapy(1, 2, 3, 4, 5, 6)  # 24 flushes wanted against 40: fine
    pharmacy.therapy(7, 8, 9, 10, 11)  # 20 more: the last days run short of flushes
    supply = delta("inventory_reservation_shortfalls_total", kind="supply")
    equipment = delta("inventory_reservation_shortfalls_total", kind="equipment")
    run = pharmacy.plan()
    assert run["short_lines"] > 0
    assert supply() == run["short_lines"] - run["equipment_short"]
    assert equipment() == run["equipment_short"] == 2  # no pump for either course
