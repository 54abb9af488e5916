"""A kit's whole journey over real HTTP against gunicorn on PostgreSQL: plan, build, scan,
pack, route, dispatch, deliver at the door with a signature, and take goods back.

The database is a fresh PostgreSQL database migrated by ``inventory db upgrade``; an admin
token is made through the ORM (as the other end-to-end tests do) and everything else goes
through the API with ``requests``.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from PIL import Image, ImageDraw
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from inventory.config import Settings
from inventory.db import Database
from inventory.ledger.audit import ledger_discrepancies
from inventory.users.models import Role
from tests.api.kit_builders import gs1
from tests.builders import gtin_for, token_for, unique
from tests.conftest import IN_CI, pg_admin_url, postgres_available
from tests.e2e.server import BIN, ROOT, gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

FLUSHES = 4  # per infusion day
Body = dict[str, Any]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database brought to the newest schema by ``inventory db upgrade``;
    dropped afterwards. Skips without a server, except in CI where that fails the run."""
    reason = postgres_available()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but does not answer: {reason}")
        pytest.skip(f"PostgreSQL not reachable ({reason}); set INVENTORY_TEST_PG_URL")
    name = f"inventory_e2e_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    try:
        upgraded = subprocess.run(
            [BIN / "inventory", "db", "upgrade"],
            env={**os.environ, "INVENTORY_DATABASE_URL": url},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Client:
    """Speaks to the server as one user."""

    base: str
    token: str

    def _call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        response = requests.request(
            method, f"{self.base}/api/v1{path}", headers=headers, timeout=30, **kwargs
        )
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, 200, params=params).json()

    def post(self, path: str, body: Body | None = None, expect: int = 201, **headers: str) -> Any:
        return self._call("POST", path, expect, json=body or {}, headers=headers).json()

    def all(self, path: str, **params: Any) -> list[Body]:
        rows: list[Body] = []
        cursor = None
        while True:
            page = self.get(path, limit=500, **params, **({"cursor": cursor} if cursor else {}))
            rows.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return rows


def signature_png() -> str:
    image = Image.new("L", (320, 120), "white")
    ImageDraw.Draw(image).line([(12, 90), (100, 20), (200, 100), (308, 25)], fill="black", width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def endpoint(side: Body) -> Any:
    return side["location_id"] if side["type"] == "location" else side["type"]


def moves(rows: list[Body]) -> Counter[tuple[Any, ...]]:
    """(item, lot, serial, from, to) → quantity, for one movement type."""
    counted: Counter[tuple[Any, ...]] = Counter()
    for m in rows:
        counted[(m["item_id"], m["lot"], m["serial"], endpoint(m["from"]), endpoint(m["to"]))] += m[
            "quantity"
        ]
    return counted


def test_a_kit_goes_from_planning_to_the_patient_and_back_over_http(postgres_url: str):
    database = Database(Settings(database_url=postgres_url, log_level="WARNING"))
    try:
        admin_token = token_for(database, Role.ADMIN)
        with gunicorn(postgres_url, workers=2) as base:
            _journey(base, Client(base, admin_token))
        with database.transaction() as session:
            assert ledger_discrepancies(session) == []
    finally:
        database.dispose()


def _journey(base: str, admin: Client) -> None:
    today = datetime.now(UTC).date()
    site = unique("E2E")[:32]

    # --- people ------------------------------------------------------------------------------
    def user(role: str, **fields: Any) -> tuple[Body, Client]:
        created = admin.post("/users", {"name": unique(role.title()), "role": role, **fields})
        secret = admin.post(f"/users/{created['id']}/tokens", {"label": "e2e"})["token"]
        return created, Client(base, secret)

    _, warehouse = user("warehouse", site=site)
    _, coordinator = user("coordinator", site=site)
    driver, driver_api = user("driver", site=site)
    vehicle = driver["vehicle_location_id"]
    assert vehicle is not None, driver

    # --- catalog and stock -------------------------------------------------------------------
    def location(kind: str) -> int:
        body = {"code": unique(kind.upper()), "name": f"{kind} e2e", "kind": kind, "site": site}
        return int(warehouse.post("/locations", body)["id"])

    shelf, staging, quarantine, cleaning = (
        location(kind) for kind in ("storage", "staging", "quarantine", "cleaning")
    )

    def item(category: str, tracking: str, **fields: Any) -> Body:
        number = int(uuid.uuid4().int % 10**8)
        body = {
            "sku": unique(f"E2E-{category}"),
            "name": f"{category} e2e",
            "category": category,
            "unit": "each",
            "tracking": tracking,
            "gtin": gtin_for(number),
            **fields,
        }
        return dict(warehouse.post("/items", body))

    flush = item("flush", "lot")
    pump = item("pump", "serial", daily_rate="12.5000")
    lot, expiry = unique("LOT"), today + timedelta(days=200)
    serial = unique("PUMP")
    warehouse.post(
        "/receipts",
        {
            "reference": unique("PO"),
            "lines": [
                {
                    "item_id": flush["id"],
                    "quantity": 30,
                    "unit_cost": "0.7500",
                    "location_id": shelf,
                    "lot": lot,
                    "expiry": expiry.isoformat(),
                },
                {
                    "item_id": pump["id"],
                    "quantity": 1,
                    "unit_cost": "900.0000",
                    "location_id": shelf,
                    "serials": [serial],
                },
            ],
        },
    )

    # --- patient, therapy, plan --------------------------------------------------------------
    payer = coordinator.post(
        "/payers",
        {
            "name": unique("Payer"),
            "rates": [
                {
                    "hcpcs": "S9357",
                    "rate": "212.5000",
                    "counting": "dose_day",
                    "effective_from": "2026-01-01",
                }
            ],
        },
    )
    patient = coordinator.post(
        "/patients",
        {
            "external_ref": unique("MRN"),
            "name": "Test Patient",
            "address": {
                "line1": "100 Congress Ave",
                "city": "Austin",
                "state": "TX",
                "postal_code": "78701",
            },
            "payer_id": payer["id"],
            "site": site,
        },
    )
    template = coordinator.post(
        "/kit-templates",
        {
            "name": unique("Template"),
            "hcpcs": "S9357",
            "lines": [{"item_id": flush["id"], "quantity_per_day": FLUSHES}],
            "equipment": [{"item_id": pump["id"], "quantity": 1}],
        },
    )
    dates = [today + timedelta(days=1), today + timedelta(days=2)]
    therapy = coordinator.post(
        "/therapies",
        {
            "patient_id": patient["id"],
            "template_id": template["id"],
            "hcpcs": "S9357",
            "start_date": today.isoformat(),
            "schedule": {"dates": [d.isoformat() for d in dates]},
        },
    )
    days = coordinator.all(f"/therapies/{therapy['id']}/infusion-days")
    assert [d["date"] for d in days] == [d.isoformat() for d in dates]
    plan = coordinator.post("/planning/run", {"horizon_days": 14, "site": site}, expect=200)
    assert plan["days_fully_reserved"] == 2, plan
    assert plan["days_short"] == 0, plan

    # --- build, scan, pack -------------------------------------------------------------------
    kit = warehouse.post(
        "/kits", {"patient_id": patient["id"], "infusion_day_ids": [d["id"] for d in days]}
    )
    lines = {(line["item_id"], line["lot"], line["serial"]): line for line in kit["lines"]}
    assert {key: line["quantity"] for key, line in lines.items()} == {
        (flush["id"], lot, None): 2 * FLUSHES,
        (pump["id"], None, serial): 1,
    }
    warehouse.post(
        f"/kits/{kit['id']}/scans",
        {"barcode": gs1(flush, lot=lot, expiry=expiry), "quantity": 2 * FLUSHES},
        expect=200,
    )
    scanned = warehouse.post(
        f"/kits/{kit['id']}/scans", {"barcode": gs1(pump, serial=serial)}, expect=200
    )
    assert scanned["kit"]["complete"] is True, scanned
    packed = warehouse.post(f"/kits/{kit['id']}/pack", expect=200)
    assert packed["status"] == "packed"

    # --- route and dispatch ------------------------------------------------------------------
    route = warehouse.post(
        "/routes", {"driver_id": driver["id"], "date": today.isoformat(), "kit_ids": [kit["id"]]}
    )
    dispatched = warehouse.post(f"/routes/{route['id']}/dispatch", expect=200)
    assert dispatched["status"] == "dispatched"
    assert dispatched["vehicle_location_id"] == vehicle
    own = driver_api.get(f"/routes/{route['id']}")
    [stop] = own["stops"]
    assert (stop["kit_id"], stop["status"]) == (kit["id"], "pending")
    assert stop["address"]["line1"] == "100 Congress Ave"
    assert "name" not in stop and "patient_id" not in stop

    # --- at the door -------------------------------------------------------------------------
    confirmation = {
        "outcome": "delivered",
        "occurred_at": datetime.now(UTC).isoformat(),
        "recipient_name": "Front door recipient",
        "relationship": "self",
        "signature": signature_png(),
        "latitude": "30.267153",
        "longitude": "-97.743057",
    }
    delivery = driver_api.post(
        f"/kits/{kit['id']}/delivery", confirmation, **{"Idempotency-Key": "pod-e2e"}
    )
    assert (delivery["outcome"], delivery["has_signature"]) == ("delivered", True)
    # The phone lost the answer and sends it again: the same answer, nothing more.
    again = requests.post(
        f"{base}/api/v1/kits/{kit['id']}/delivery",
        json=confirmation,
        headers={"Authorization": f"Bearer {driver_api.token}", "Idempotency-Key": "pod-e2e"},
        timeout=30,
    )
    assert again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == delivery
    assert warehouse.get(f"/kits/{kit['id']}")["status"] == "delivered"
    assert {d["status"] for d in coordinator.all(f"/therapies/{therapy['id']}/infusion-days")} == {
        "delivered"
    }
    [at_home] = warehouse.all("/equipment", item_id=pump["id"])
    assert (at_home["serial"], at_home["status"], at_home["patient_id"]) == (
        serial,
        "at_patient",
        patient["id"],
    )

    # --- goods back --------------------------------------------------------------------------
    returned = driver_api.post(
        f"/kits/{kit['id']}/returns",
        {
            "lines": [
                {"item_id": flush["id"], "lot": lot, "quantity": 3, "condition": "unopened"},
                {"item_id": flush["id"], "lot": lot, "quantity": 1, "condition": "opened"},
                {"item_id": pump["id"], "serial": serial, "quantity": 1, "condition": "opened"},
            ],
            "sharps_containers": 1,
        },
        **{"Idempotency-Key": "back-e2e"},
    )
    assert [
        (line["item_id"], line["quantity"], line["disposition"]) for line in returned["lines"]
    ] == [
        (flush["id"], 3, "quarantine"),
        (flush["id"], 1, "disposal"),
        (pump["id"], 1, "cleaning"),
    ]
    assert (returned["credit_value"], returned["waste_value"]) == ("2.2500", "0.7500")
    assert warehouse.get(f"/kits/{kit['id']}")["status"] == "returned"

    # --- where things are now ----------------------------------------------------------------
    def on_hand(item_id: int, location_id: int) -> dict[tuple[Any, ...], int]:
        rows = warehouse.all("/stock", item_id=item_id, location_id=location_id)
        return {(row["lot"], _day(row["expiry"])): row["on_hand"] for row in rows if row["on_hand"]}

    assert on_hand(flush["id"], quarantine) == {(lot, expiry): 3}
    assert on_hand(flush["id"], shelf) == {(lot, expiry): 30 - 2 * FLUSHES}
    assert on_hand(flush["id"], staging) == {}
    assert on_hand(flush["id"], vehicle) == {}
    [unit] = warehouse.all("/equipment", item_id=pump["id"])
    assert (unit["serial"], unit["status"], unit["patient_id"]) == (serial, "dirty", None)
    assert [u["serial"] for u in warehouse.all("/equipment", status="dirty")] == [serial]

    # --- the ledger tells the story ----------------------------------------------------------
    supplies = (flush["id"], lot, None)
    equipment = (pump["id"], None, serial)
    expected = {
        "pick": {(*supplies, shelf, staging): 2 * FLUSHES, (*equipment, shelf, staging): 1},
        "dispatch": {
            (*supplies, staging, vehicle): 2 * FLUSHES,
            (*equipment, staging, vehicle): 1,
        },
        "delivery": {
            (*supplies, vehicle, "patient"): 2 * FLUSHES,
            (*equipment, vehicle, "patient"): 1,
        },
        "return": {
            (*supplies, "patient", quarantine): 3,
            (*supplies, "patient", "disposal"): 1,
            (*equipment, "patient", cleaning): 1,
        },
    }
    # The van's side of the ledger: loaded at dispatch, emptied at the door.
    assert (
        moves(warehouse.all("/movements", type="dispatch", location_id=vehicle))
        == expected["dispatch"]
    )
    by_type: dict[str, list[Body]] = {}
    for m in warehouse.all("/movements", kit_id=kit["id"]):
        by_type.setdefault(m["type"], []).append(m)
    for kind in ("pick", "delivery", "return"):
        rows = by_type.get(kind, [])
        assert len({m["document_id"] for m in rows}) == 1, (kind, rows)
        assert {m["kit_id"] for m in rows} == {kit["id"]}, (kind, rows)
        assert moves(rows) == expected[kind], kind
    # The kit's whole journey is filterable by kit_id, dispatch included (the README's own
    # walk-through asks GET /movements?kit_id=1&type=dispatch).
    assert set(by_type) == set(expected), sorted(by_type)
    assert moves(by_type["dispatch"]) == expected["dispatch"]
    assert {m["kit_id"] for m in by_type["dispatch"]} == {kit["id"]}
    firsts = [min(m["id"] for m in by_type[kind]) for kind in expected]
    assert firsts == sorted(firsts), "the movements are not in the order the kit travelled"


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
