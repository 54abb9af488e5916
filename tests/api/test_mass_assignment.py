"""Mass assignment: a request body cannot set what the server owns, nor smuggle unknown fields.

Every field a POST or PATCH body does not declare is refused with 422 problem+json naming the
field in ``errors`` (``lines.0.actor`` for a nested one), and nothing stored changes.

The cases are generated from the app's own OpenAPI spec, so an endpoint added later is covered
without touching this file. For every operation with a JSON request body:

* every property of its 2xx response schema that its request schema does not declare (``id``,
  ``status``, ``created_at``, ``version``, ``actor``...), plus the server-owned names every
  resource here has (``SERVER_OWNED``) and one arbitrary unknown name, is sent at the top level;
* the same, minus what the nested request schema declares, inside every nested object of the
  body (a receipt line, a patient's address, a payer's rate...).

Each field is added to a body that is otherwise valid (the operation's ``SCENARIOS`` entry
builds real data and the body), so the field alone decides the answer; after the refused cases
the same body without the field must be accepted, which shows it. "Nothing changed" is checked
twice: every table of the database (read on the test's own connection) is the same row for row,
and the resource's own GET answers the same. An operation without a scenario still runs: its
fields are sent alone to the path with the largest id, and the 422 must name them.

Explicit tests follow for the fields the issue names: ``status`` and ``unit_cost`` on kits,
``actor`` and ``id`` on receipts, transfers and adjustments (and their lines), ``reserved`` and
``on_hand`` on stock corrections, ``id``/``created_at``/``version`` on PATCHed resources.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection, select
from werkzeug.test import TestResponse

import inventory.models  # noqa: F401 - registers every table in the metadata
from inventory import create_app
from inventory.blueprint import MAX_ID
from inventory.config import Settings
from inventory.db import Base, Database
from inventory.users.models import Role
from tests.api.care_builders import make_payer, patient_body, payer_body, template_body
from tests.api.delivery_builders import Driver, Rounds, delivered
from tests.api.kit_builders import Pharmacy, gs1, in_days
from tests.api.planning_builders import today
from tests.builders import Api, Catalog, gtin_for, ok, problem, unique

Body = dict[str, Any]
JSON_METHODS = ("post", "put", "patch")
# Names the server owns on every resource here; sent wherever a request schema lacks them.
SERVER_OWNED = (
    "id",
    "status",
    "unit_cost",
    "actor",
    "created_at",
    "recorded_at",
    "reserved",
    "on_hand",
    "version",
    "total_cost",
)
UNKNOWN = "definitely_not_a_field"
SAMPLES: dict[str, Any] = {
    "id": 1,
    "status": "packed",
    "unit_cost": "0.0001",
    "actor": 1,
    "created_at": "2020-01-01T00:00:00+00:00",
    "recorded_at": "2020-01-01T00:00:00+00:00",
    "reserved": 0,
    "on_hand": 100000,
    "version": 99,
    "total_cost": "0.01",
    UNKNOWN: "x",
}


# --- the spec ---------------------------------------------------------------------------------


def load_spec() -> dict[str, Any]:
    app = create_app(Settings(database_url="sqlite://", log_level="WARNING"))
    spec: dict[str, Any] = json.loads(json.dumps(app.extensions["inventory.api"].spec.to_dict()))
    return spec


SPEC = load_spec()
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]


def resolve(schema: Any) -> dict[str, Any]:
    """A schema with its ``$ref`` followed, and a lone ``allOf``/``oneOf`` wrapper unwrapped."""
    while isinstance(schema, dict):
        if "$ref" in schema:
            schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
        elif len(schema.get("allOf", ())) == 1:
            schema = schema["allOf"][0]
        else:
            return schema
    return {}


def properties(schema: Any) -> dict[str, Any]:
    schema = resolve(schema)
    if schema.get("type") == "array":
        schema = resolve(schema.get("items"))
    return dict(schema.get("properties", {}))


def sample(name: str, schema: Any) -> Any:
    """A value of the response property's type: the field would be well-formed if it existed."""
    if name in SAMPLES:
        return SAMPLES[name]
    schema = resolve(schema)
    for key in ("oneOf", "anyOf", "allOf"):
        if schema.get(key):
            return sample(name, schema[key][0])
    if schema.get("enum"):
        return schema["enum"][-1]
    kind, form = schema.get("type"), schema.get("format")
    if kind == "integer":
        return 7
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object" or "properties" in schema:
        return {}
    if form == "date-time":
        return "2020-01-01T00:00:00+00:00"
    if form == "date":
        return "2020-01-01"
    if form == "decimal":
        return "1.0000"
    return "x"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as the spec writes it, e.g. /api/v1/kits/{kit_id}/scans
    request: dict[str, Any]  # property name -> schema
    response: dict[str, Any]
    path_params: dict[str, Any]  # name -> schema

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"

    def injected(self) -> dict[str, Any]:
        """Top-level field -> value: what the response has and the request does not, the
        server-owned names, and one unknown name."""
        fields = {name: self.response[name] for name in self.response if name not in self.request}
        fields.update({name: {} for name in SERVER_OWNED if name not in self.request})
        fields.setdefault(UNKNOWN, {})
        return {name: sample(name, schema) for name, schema in fields.items()}

    def nested(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """A nested request object's own properties, and the same-named response object's."""
        return properties(self.request[name]), properties(self.response.get(name))


def json_operations() -> list[Operation]:
    found = []
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method not in JSON_METHODS:
                continue
            content = (operation.get("requestBody") or {}).get("content", {})
            if "application/json" not in content:
                continue
            success = [v for k, v in operation["responses"].items() if k.startswith("2")]
            response_schema = (
                success[0].get("content", {}).get("application/json", {}).get("schema")
                if success
                else None
            )
            params = {
                p["name"]: p.get("schema", {})
                for p in operation.get("parameters", []) + item.get("parameters", [])
                if p.get("in") == "path"
            }
            found.append(
                Operation(
                    method,
                    path,
                    properties(content["application/json"]["schema"]),
                    properties(response_schema) if response_schema else {},
                    params,
                )
            )
    return found


OPERATIONS = json_operations()


# --- what is stored ---------------------------------------------------------------------------


def database_rows(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, on the test's own connection (the app's savepoints included)."""
    rows = {}
    for table in Base.metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        rows[table.name] = [
            tuple(row) for row in connection.execute(select(table).order_by(*order))
        ]
    return rows


def changed_tables(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> list[str]:
    return [
        f"{name} ({len(before[name])} -> {len(after[name])} rows)"
        for name in before
        if before[name] != after[name]
    ]


def read(api: Api, path: str) -> Any:
    """GET a path (query string included) as ``api``; the JSON, which must be 200."""
    response = api.client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200, (path, response.status_code, response.get_json())
    return response.get_json()


# --- real data for each operation -------------------------------------------------------------


@dataclass
class Case:
    """One operation made concrete: who calls it, at which path, with which valid body, and
    which GETs show the resource it would change."""

    api: Api
    path: str  # after /api/v1
    body: Body
    reads: list[str] = field(default_factory=list)
    reader: Api | None = None

    def send(self, body: Body, method: str) -> TestResponse:
        headers = {"Authorization": f"Bearer {self.api.token}"}
        if method == "post":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        return self.api.client.open(
            f"/api/v1{self.path}",
            method=method.upper(),
            data=json.dumps(body),
            content_type="application/json",
            headers=headers,
        )

    def state(self) -> list[Any]:
        return [read(self.reader or self.api, path) for path in self.reads]


class World:
    """Real data, built on first use: each test builds only what its operation needs."""

    def __init__(self, as_role: Callable[..., Api], app: Flask, database: Database) -> None:
        self.as_role = as_role
        self.app = app
        self.database = database

    @cached_property
    def admin(self) -> Api:
        return self.as_role(Role.ADMIN)

    @cached_property
    def warehouse(self) -> Api:
        return self.as_role(Role.WAREHOUSE)

    @cached_property
    def coordinator(self) -> Api:
        return self.as_role(Role.COORDINATOR)

    @cached_property
    def finance(self) -> Api:
        return self.as_role(Role.FINANCE)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.warehouse, self.app)

    @cached_property
    def pharmacy(self) -> Pharmacy:
        return Pharmacy.open(self.catalog, self.coordinator, self.database)

    @cached_property
    def rounds(self) -> Rounds:
        return Rounds(self.pharmacy, self.as_role, self.database)

    @cached_property
    def driver(self) -> Driver:
        return self.rounds.driver()

    @cached_property
    def user(self) -> Body:
        user: Body = ok(
            self.admin.post("/users", {"name": unique("clerk"), "role": "warehouse"}), 201
        )
        return user

    @cached_property
    def shelves(self) -> tuple[Body, Body]:
        return self.catalog.location(), self.catalog.location()

    @cached_property
    def stocked(self) -> tuple[Body, str]:
        """A lot-tracked item with 10 units of one lot on the first shelf; (item, lot)."""
        item = self.catalog.item(tracking="lot")
        lot = unique("LOT")
        self.catalog.receive(item, self.shelves[0], 10, lot=lot)
        return item, lot

    @cached_property
    def payer(self) -> Body:
        return make_payer(self.coordinator)

    @cached_property
    def patient(self) -> Body:
        patient: Body = ok(self.coordinator.post("/patients", patient_body(self.payer["id"])), 201)
        return patient

    @cached_property
    def planned_days(self) -> list[Body]:
        """Two infusion days of the pharmacy's patient, fully reserved."""
        _, days = self.pharmacy.therapy(1, 2)
        self.pharmacy.plan()
        return days

    @cached_property
    def open_kit(self) -> Body:
        return self.pharmacy.build(self.planned_days)

    @cached_property
    def packed_kit(self) -> Body:
        return self.rounds.packed_kit()

    @cached_property
    def delivered_kit(self) -> Body:
        kit = self.packed_kit
        self.rounds.on_the_road(self.driver, kit)
        self.rounds.deliver(self.driver, kit)
        return kit

    def flush_line(self, kit: Body) -> Body:
        lines: list[Body] = ok(self.warehouse.get(f"/kits/{kit['id']}"))["lines"]
        return next(line for line in lines if line["item_id"] == self.pharmacy.flush["id"])

    def unit_id(self) -> int:
        item, serial = self.pharmacy.pump, self.pharmacy.serials[-1]
        [unit] = [
            row
            for row in read(self.warehouse, f"/equipment?item_id={item['id']}&limit=500")["items"]
            if row["serial"] == serial
        ]
        return int(unit["id"])


def _users(w: World) -> Case:
    return Case(w.admin, "/users", {"name": unique("clerk"), "role": "warehouse"})


def _user_patch(w: World) -> Case:
    path = f"/users/{w.user['id']}"
    return Case(w.admin, path, {"name": unique("renamed")}, [path])


def _user_tokens(w: World) -> Case:
    path = f"/users/{w.user['id']}"
    return Case(w.admin, f"{path}/tokens", {"label": "handheld"}, [path])


def _items(w: World) -> Case:
    number = int(unique("n").split("-")[1]) + 50_000
    body = {
        "sku": unique("SKU"),
        "name": "Gauze",
        "category": "dressing",
        "unit": "each",
        "tracking": "none",
        "gtin": gtin_for(number),
    }
    return Case(w.warehouse, "/items", body)


def _item_patch(w: World) -> Case:
    item = w.catalog.item(tracking="none")
    path = f"/items/{item['id']}"
    return Case(w.warehouse, path, {"name": "Renamed item"}, [path])


def _locations(w: World) -> Case:
    body = {"code": unique("BIN"), "name": "bin", "kind": "storage", "site": "SITE1"}
    return Case(w.warehouse, "/locations", body)


def _scans_parse(w: World) -> Case:
    item = w.catalog.item(tracking="lot")
    barcode = gs1(item, lot="L1", expiry=in_days(90))
    return Case(w.warehouse, "/scans/parse", {"barcode": barcode})


def _ledger_reads(item: Body) -> list[str]:
    return [f"/stock?item_id={item['id']}", f"/movements?item_id={item['id']}"]


def _receipts(w: World) -> Case:
    item, _ = w.stocked
    line = {
        "item_id": item["id"],
        "quantity": 5,
        "unit_cost": "2.0000",
        "location_id": w.shelves[0]["id"],
        "lot": unique("LOT"),
        "expiry": in_days(300).isoformat(),
    }
    body = {"reference": unique("PO"), "lines": [line]}
    return Case(w.warehouse, "/receipts", body, _ledger_reads(item))


def _transfers(w: World) -> Case:
    item, lot = w.stocked
    line = {
        "item_id": item["id"],
        "lot": lot,
        "quantity": 2,
        "from_location_id": w.shelves[0]["id"],
        "to_location_id": w.shelves[1]["id"],
    }
    return Case(w.warehouse, "/transfers", {"lines": [line]}, _ledger_reads(item))


def _adjustments(w: World) -> Case:
    item, lot = w.stocked
    line = {
        "item_id": item["id"],
        "lot": lot,
        "location_id": w.shelves[0]["id"],
        "quantity_delta": -1,
    }
    body = {"reason": "damaged", "note": "crushed", "lines": [line]}
    return Case(w.warehouse, "/adjustments", body, _ledger_reads(item))


def _payers(w: World) -> Case:
    return Case(w.coordinator, "/payers", payer_body())


def _payer_patch(w: World) -> Case:
    path = f"/payers/{w.payer['id']}"
    return Case(w.coordinator, path, {"name": unique("Renamed")}, [path])


def _patients(w: World) -> Case:
    return Case(w.coordinator, "/patients", patient_body(w.payer["id"]))


def _patient_patch(w: World) -> Case:
    path = f"/patients/{w.patient['id']}"
    body = {
        "phone": "5125550100",
        "address": {"line1": "1 Main St", "city": "Austin", "state": "TX", "postal_code": "78701"},
    }
    return Case(w.coordinator, path, body, [path])


def _kit_templates(w: World) -> Case:
    item = w.catalog.item(tracking="lot")
    return Case(w.coordinator, "/kit-templates", template_body([(item["id"], 2)]))


def _therapies(w: World) -> Case:
    p = w.pharmacy
    body = {
        "patient_id": p.patient_id,
        "template_id": p.template_id,
        "hcpcs": "S9357",
        "start_date": today().isoformat(),
        "schedule": {"dates": [in_days(3).isoformat()]},
    }
    return Case(w.coordinator, "/therapies", body, [f"/therapies?patient_id={p.patient_id}"])


def _discontinue(w: World) -> Case:
    therapy, _ = w.pharmacy.therapy(1, 2)
    path = f"/therapies/{therapy['id']}"
    body = {"end_date": today().isoformat(), "note": "stopped"}
    return Case(w.coordinator, f"{path}/discontinue", body, [path, f"{path}/infusion-days"])


def _day_patch(w: World) -> Case:
    _, days = w.pharmacy.therapy(4)
    path = f"/infusion-days/{days[0]['id']}"
    return Case(w.coordinator, path, {"date": in_days(5).isoformat()}, [path])


def _planning(w: World) -> Case:
    w.pharmacy.therapy(1, 2)
    return Case(w.coordinator, "/planning/run", {"horizon_days": 14}, ["/reservations?limit=500"])


def _transitions(w: World) -> Case:
    path = f"/equipment/{w.unit_id()}"
    return Case(w.warehouse, f"{path}/transitions", {"to": "retired", "note": "cracked"}, [path])


def _kits(w: World) -> Case:
    p = w.pharmacy
    body = {"patient_id": p.patient_id, "infusion_day_ids": [d["id"] for d in w.planned_days]}
    reads = [f"/kits?patient_id={p.patient_id}", f"/infusion-days/{w.planned_days[0]['id']}"]
    return Case(w.warehouse, "/kits", body, reads)


def _kit_scans(w: World) -> Case:
    kit = w.open_kit
    line = w.flush_line(kit)
    barcode = gs1(w.pharmacy.flush, lot=line["lot"], expiry=date.fromisoformat(line["expiry"]))
    path = f"/kits/{kit['id']}"
    return Case(w.warehouse, f"{path}/scans", {"barcode": barcode, "quantity": 1}, [path])


def _kit_cancel(w: World) -> Case:
    path = f"/kits/{w.open_kit['id']}"
    return Case(w.warehouse, f"{path}/cancel", {"reason": "therapy on hold"}, [path])


def _recalls(w: World) -> Case:
    item, lot = w.stocked
    w.catalog.location(kind="quarantine")  # where the recalled units go
    body = {"item_id": item["id"], "lot": lot, "note": "vendor notice"}
    return Case(w.warehouse, "/recalls", body, _ledger_reads(item))


def _routes(w: World) -> Case:
    kit = w.packed_kit
    body = {"driver_id": w.driver.id, "date": today().isoformat(), "kit_ids": [kit["id"]]}
    return Case(w.warehouse, "/routes", body, [f"/kits/{kit['id']}", "/routes?limit=500"])


def _delivery(w: World) -> Case:
    kit = w.packed_kit
    w.rounds.on_the_road(w.driver, kit)
    path = f"/kits/{kit['id']}"
    reads = [path, f"{path}/delivery"]
    return Case(w.driver.api, f"{path}/delivery", delivered(), reads, w.warehouse)


def _reversal(w: World) -> Case:
    path = f"/kits/{w.delivered_kit['id']}"
    reads = [path, f"{path}/delivery"]
    return Case(w.warehouse, f"{path}/delivery/reversal", {"reason": "wrong door"}, reads)


def _returns(w: World) -> Case:
    kit = w.delivered_kit
    line = w.flush_line(kit)
    body = {
        "lines": [
            {"item_id": line["item_id"], "lot": line["lot"], "quantity": 1, "condition": "unopened"}
        ],
        "sharps_containers": 0,
    }
    path = f"/kits/{kit['id']}"
    return Case(w.driver.api, f"{path}/returns", body, [path, f"{path}/returns"], w.warehouse)


def _driver_patch(w: World) -> Case:
    driver = w.driver
    body = {"vehicle_location_id": driver.vehicle_id}
    return Case(w.warehouse, f"/drivers/{driver.id}", body, ["/drivers?limit=500"])


def _reconciliations(w: World) -> Case:
    claim = {
        "external_ref": unique("MRN"),
        "hcpcs": "S9357",
        "date_of_service": "2026-03-10",
        "units": 1,
        "billed_amount": "400.00",
    }
    return Case(w.finance, "/reconciliations", {"claims": [claim]})


def _period_close(w: World) -> Case:
    return Case(w.finance, "/periods/2025-01/close", {"note": "books"}, ["/periods"])


SCENARIOS: dict[str, Callable[[World], Case]] = {
    "POST /api/v1/users": _users,
    "PATCH /api/v1/users/{user_id}": _user_patch,
    "POST /api/v1/users/{user_id}/tokens": _user_tokens,
    "POST /api/v1/items": _items,
    "PATCH /api/v1/items/{item_id}": _item_patch,
    "POST /api/v1/locations": _locations,
    "POST /api/v1/scans/parse": _scans_parse,
    "POST /api/v1/receipts": _receipts,
    "POST /api/v1/transfers": _transfers,
    "POST /api/v1/adjustments": _adjustments,
    "POST /api/v1/payers": _payers,
    "PATCH /api/v1/payers/{payer_id}": _payer_patch,
    "POST /api/v1/patients": _patients,
    "PATCH /api/v1/patients/{patient_id}": _patient_patch,
    "POST /api/v1/kit-templates": _kit_templates,
    "POST /api/v1/therapies": _therapies,
    "POST /api/v1/therapies/{therapy_id}/discontinue": _discontinue,
    "PATCH /api/v1/infusion-days/{day_id}": _day_patch,
    "POST /api/v1/planning/run": _planning,
    "POST /api/v1/equipment/{unit_id}/transitions": _transitions,
    "POST /api/v1/kits": _kits,
    "POST /api/v1/kits/{kit_id}/scans": _kit_scans,
    "POST /api/v1/kits/{kit_id}/cancel": _kit_cancel,
    "POST /api/v1/recalls": _recalls,
    "POST /api/v1/routes": _routes,
    "POST /api/v1/kits/{kit_id}/delivery": _delivery,
    "POST /api/v1/kits/{kit_id}/delivery/reversal": _reversal,
    "POST /api/v1/kits/{kit_id}/returns": _returns,
    "PATCH /api/v1/drivers/{driver_id}": _driver_patch,
    "POST /api/v1/reconciliations": _reconciliations,
    "POST /api/v1/periods/{month}/close": _period_close,
}


def fallback(operation: Operation, w: World) -> Case:
    """An operation nobody wrote a scenario for: the admin, the largest id in every path
    parameter, an empty body (the 422 must still name the injected field)."""
    path = operation.path.removeprefix("/api/v1")
    for name, schema in operation.path_params.items():
        value = MAX_ID if resolve(schema).get("type") == "integer" else "x"
        path = path.replace("{" + name + "}", str(value))
    return Case(w.admin, path, {})


# --- the generated cases ----------------------------------------------------------------------


def variants(operation: Operation, body: Body) -> Iterator[tuple[str, Body]]:
    """(field path as ``errors`` names it, body with that one field added)."""
    for name, value in operation.injected().items():
        yield name, {**body, name: value}
    for name, value in body.items():
        if name not in operation.request:
            continue
        element = value[0] if isinstance(value, list) and value else value
        if not isinstance(element, dict):
            continue
        declared, answered = operation.nested(name)
        extra = {n: answered[n] for n in answered if n not in declared}
        extra.update({n: {} for n in SERVER_OWNED if n not in declared})
        extra.setdefault(UNKNOWN, {})
        for inner, schema in extra.items():
            smuggled = {**element, inner: sample(inner, schema)}
            if isinstance(value, list):
                yield f"{name}.0.{inner}", {**body, name: [smuggled, *value[1:]]}
            else:
                yield f"{name}.{inner}", {**body, name: smuggled}


def test_the_spec_gives_the_generator_every_write_operation() -> None:
    """A broken generator would test nothing: it must find the write operations, each with
    server-owned fields to send, and every scenario must name one of them."""
    labels = {operation.label for operation in OPERATIONS}
    assert len(labels) >= 30
    assert set(SCENARIOS) <= labels, set(SCENARIOS) - labels
    assert {"POST /api/v1/kits", "POST /api/v1/receipts", "PATCH /api/v1/items/{item_id}"} <= labels
    for operation in OPERATIONS:
        injected = operation.injected()
        assert UNKNOWN in injected and "id" in injected, operation.label
    kits = next(op for op in OPERATIONS if op.label == "POST /api/v1/kits")
    assert {"status", "unit_cost", "version", "created_at"} <= set(kits.injected())


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_a_field_the_request_does_not_declare_is_422_and_changes_nothing(
    operation: Operation,
    as_role: Callable[..., Api],
    app: Flask,
    database: Database,
    connection: Connection,
) -> None:
    world = World(as_role, app, database)
    scenario = SCENARIOS.get(operation.label)
    case = scenario(world) if scenario else fallback(operation, world)
    failures: list[str] = []
    cases = list(variants(operation, case.body))
    rows, state = database_rows(connection), case.state()
    for name, body in cases:
        response = case.send(body, operation.method)
        if response.status_code != 422:
            failures.append(f"{name}: {response.status_code} {response.get_data(as_text=True)}")
        elif response.content_type != "application/problem+json":
            failures.append(f"{name}: 422 as {response.content_type}")
        elif name not in (response.get_json().get("errors") or {}):
            failures.append(f"{name}: 422 without naming it: {response.get_json()}")
    # Stored state is compared once for all the cases; if it moved, each case is sent again
    # alone to find which one moved it.
    now = database_rows(connection)
    if now != rows or case.state() != state:
        failures.append(f"the stored state changed: {changed_tables(rows, now)}")
        for name, body in cases:
            rows, state = database_rows(connection), case.state()
            case.send(body, operation.method)
            now = database_rows(connection)
            if now != rows or case.state() != state:
                failures.append(f"{name}: changed {changed_tables(rows, now)} or {case.reads}")
    tried = len(cases)
    assert tried >= 2
    assert not failures, f"{operation.label}:\n" + "\n".join(failures)
    if scenario is not None:
        # The same body without the field is taken: the field alone made the 422.
        response = case.send(case.body, operation.method)
        assert 200 <= response.status_code < 300, (
            "the scenario's own body is refused; fix the scenario",
            response.status_code,
            response.get_json(),
        )


# --- the fields the issue names, one by one ---------------------------------------------------


def refused(response: TestResponse, *fields: str) -> dict[str, Any]:
    """A 422 problem naming each of ``fields`` in ``errors``."""
    body = problem(response, 422)
    assert set(fields) <= set(body.get("errors") or {}), body
    return body


@pytest.fixture
def world(as_role: Callable[..., Api], app: Flask, database: Database) -> World:
    return World(as_role, app, database)


KIT_SMUGGLED = [
    {"status": "packed"},
    {"unit_cost": "0.0001"},
    {"status": "delivered", "unit_cost": "0"},
]


def test_a_kit_cannot_be_created_packed_or_at_a_cost_the_client_chooses(
    world: World, connection: Connection
) -> None:
    p, days = world.pharmacy, world.planned_days
    body = {"patient_id": p.patient_id, "infusion_day_ids": [d["id"] for d in days]}

    def stored() -> tuple[Any, ...]:
        return (
            read(world.warehouse, f"/kits?patient_id={p.patient_id}"),
            [read(world.warehouse, f"/infusion-days/{d['id']}") for d in days],
            read(world.warehouse, "/reservations?limit=500"),
            database_rows(connection),
        )

    before = stored()
    assert before[0] == {"items": [], "next_cursor": None}
    for smuggled in KIT_SMUGGLED:
        refused(world.warehouse.post("/kits", {**body, **smuggled}), *smuggled)
        assert stored() == before, smuggled
    kit = ok(world.warehouse.post("/kits", body), 201)
    assert kit["status"] == "open"


def test_a_kit_scan_cannot_set_the_kit_status_or_a_cost(world: World) -> None:
    kit = world.open_kit
    line = world.flush_line(kit)
    expiry = date.fromisoformat(line["expiry"])
    scan = {"barcode": gs1(world.pharmacy.flush, lot=line["lot"], expiry=expiry), "quantity": 1}
    path = f"/kits/{kit['id']}"
    before = read(world.warehouse, path)
    for smuggled in KIT_SMUGGLED:
        refused(world.warehouse.post(f"{path}/scans", {**scan, **smuggled}), *smuggled)
        assert read(world.warehouse, path) == before, smuggled
    assert before["status"] == "open"
    assert sum(line["packed_quantity"] for line in before["lines"]) == 0
    scanned = ok(world.warehouse.post(f"{path}/scans", scan))["kit"]
    assert sum(line["packed_quantity"] for line in scanned["lines"]) == 1


STOCK_DOCUMENTS = {"receipts": _receipts, "transfers": _transfers, "adjustments": _adjustments}


@pytest.mark.parametrize("kind", sorted(STOCK_DOCUMENTS))
def test_a_stock_document_cannot_name_its_own_actor_or_id(
    world: World, connection: Connection, kind: str
) -> None:
    """The actor is whoever holds the token and the id is the server's: sending either, on the
    document or on a line, is refused and nothing is written; the movements name the caller
    once the same body comes without it."""
    case = STOCK_DOCUMENTS[kind](world)
    other = read(world.admin, "/me")
    [existing] = read(world.warehouse, "/movements?limit=500")["items"]
    # Values that would matter if taken: another user as actor, an id already in the ledger.
    values = {"actor": other["id"], "id": existing["document_id"]}
    movements = read(world.warehouse, "/movements?limit=500")
    stock = read(world.warehouse, "/stock?limit=500")
    rows = database_rows(connection)
    for name, value in values.items():
        for body, field_path in (
            ({**case.body, name: value}, name),
            ({**case.body, "lines": [{**case.body["lines"][0], name: value}]}, f"lines.0.{name}"),
            ({**case.body, name: {"id": value, "name": "x"}}, name),
        ):
            refused(world.warehouse.post(f"/{kind}", body), field_path)
            assert read(world.warehouse, "/movements?limit=500") == movements, field_path
            assert read(world.warehouse, "/stock?limit=500") == stock, field_path
            assert database_rows(connection) == rows, field_path
    document = ok(world.warehouse.post(f"/{kind}", case.body), 201)
    me = read(world.warehouse, "/me")
    assert document["actor"]["id"] == me["id"] != other["id"]
    assert document["id"] != existing["document_id"]
    assert {m["actor"]["id"] for m in document["movements"]} == {me["id"]}


def test_movements_have_no_write_endpoint(world: World, connection: Connection) -> None:
    """The ledger is written only through documents: POST, PUT or PATCH on movements is 405,
    whatever the body carries."""
    item, _ = world.stocked
    [movement] = read(world.warehouse, "/movements?limit=500")["items"]
    assert movement["item_id"] == item["id"]
    rows = database_rows(connection)
    for name in ("actor", "id", "unit_cost", "occurred_at"):
        body = {**movement, name: SAMPLES.get(name, "2020-01-01T00:00:00+00:00")}
        for method in ("POST", "PUT", "PATCH"):
            for path in ("/api/v1/movements", f"/api/v1/movements/{movement['id']}"):
                response = world.warehouse.client.open(
                    path,
                    method=method,
                    data=json.dumps(body),
                    content_type="application/json",
                    headers={"Authorization": f"Bearer {world.warehouse.token}"},
                )
                assert response.status_code in (404, 405), (method, path, response.status_code)
                problem(response, response.status_code)
    assert read(world.warehouse, "/movements?limit=500")["items"] == [movement]
    assert database_rows(connection) == rows


@pytest.mark.parametrize("kind", ["adjustments", "transfers"])
def test_stock_figures_cannot_be_sent_on_a_line(
    world: World, connection: Connection, kind: str
) -> None:
    """Balances are the sum of the movements: a line cannot set one."""
    case = STOCK_DOCUMENTS[kind](world)
    item, _ = world.stocked
    stock = read(world.warehouse, f"/stock?item_id={item['id']}")
    rows = database_rows(connection)
    for name in ("on_hand", "reserved", "available"):
        body = {**case.body, "lines": [{**case.body["lines"][0], name: 1000}]}
        refused(world.warehouse.post(f"/{kind}", body), f"lines.0.{name}")
        assert read(world.warehouse, f"/stock?item_id={item['id']}") == stock, name
        assert database_rows(connection) == rows, name
    assert sum(row["on_hand"] for row in stock["items"]) == 10


def test_a_patch_cannot_rewrite_what_the_server_owns(world: World) -> None:
    item = world.catalog.item(tracking="none")
    path = f"/items/{item['id']}"
    before = read(world.warehouse, path)
    for smuggled in (
        {"id": 1},
        {"created_at": "2001-01-01T00:00:00+00:00"},
        {"updated_at": "2001-01-01T00:00:00+00:00"},
        {"version": 42},
        {"status": "retired"},
        {"is_equipment": True},
    ):
        refused(world.warehouse.patch(path, {"name": "Renamed", **smuggled}), *smuggled)
        assert read(world.warehouse, path) == before, smuggled
    renamed = ok(world.warehouse.patch(path, {"name": "Renamed"}))
    assert (renamed["id"], renamed["created_at"]) == (before["id"], before["created_at"])
