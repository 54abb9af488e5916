"""Limits that keep one request from taking the service down.

1. Page size: every list operation in the spec (every GET with a ``limit`` parameter) refuses
   ``limit`` over 500 with 422 naming ``limit`` and serves a page of 500.
2. Body size: every operation with a JSON body answers 413 problem+json to a body over
   ``INVENTORY_MAX_BODY_BYTES`` and stores nothing; a CSV upload to ``POST /reconciliations``
   may be larger, up to ``INVENTORY_MAX_UPLOAD_BYTES``, and is 413 above it. A body sent
   without ``Content-Length`` (chunked, as gunicorn hands it over with
   ``wsgi.input_terminated``) is held to the same limits.
3. Slow work: on PostgreSQL a query running past ``INVENTORY_PG_STATEMENT_TIMEOUT_MS`` is
   cancelled and answers 503 problem+json with ``Retry-After``, and the same app goes on
   serving; the per diem exports (CSV, XLSX, the drill-down CSV) are streamed, their rows read
   from the database as the body is sent, not built in memory first.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection, event, func, select, text
from werkzeug.test import TestResponse

from inventory import create_app
from inventory.blueprint import MAX_ID
from inventory.catalog.models import Location, LocationKind
from inventory.config import Settings
from inventory.db import Database, make_engine
from inventory.finance import costing
from inventory.users.models import Role
from inventory.web import session as request_session
from tests.api.planning_builders import make_patient, make_payer, make_template, today
from tests.api.test_mass_assignment import OPERATIONS, SPEC, World, database_rows
from tests.builders import Api, ok, problem, token_for, unique
from tests.conftest import Backend

MAX_PAGE = 500
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONTH = "2025-01"  # a {month} path parameter: long over, never closed here


# --- the spec ---------------------------------------------------------------------------------


def list_operations() -> list[tuple[str, dict[str, Any]]]:
    """(path, operation) of every GET taking ``limit``."""
    found = []
    for path, item in SPEC["paths"].items():
        operation = item.get("get")
        parameters = [*item.get("parameters", []), *(operation or {}).get("parameters", [])]
        if operation and any(p["name"] == "limit" for p in parameters):
            found.append((path, {**operation, "parameters": parameters}))
    return found


LISTS = list_operations()


def query_value(schema: dict[str, Any]) -> Any:
    """A valid value for a required query parameter."""
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("format") == "date":
        return today().isoformat()
    if schema.get("type") == "integer":
        return 1
    return "x"


def bearer(api: Api) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token}"}


def _therapy_id(admin: Api, database: Database) -> int:
    patient_id = make_patient(database, make_payer(database))
    body = {
        "patient_id": patient_id,
        "template_id": make_template(database),
        "hcpcs": "S9357",
        "start_date": today().isoformat(),
        "schedule": {"every_days": 7},
    }
    return int(ok(admin.post("/therapies", body), 201)["id"])


# A real resource for each path parameter of a list, so that limit=500 is served, not 404.
PATH_RESOURCES: dict[str, Callable[[Api, Database], int]] = {"therapy_id": _therapy_id}


# --- 1. page size -----------------------------------------------------------------------------


def test_the_spec_documents_the_page_cap_on_every_list() -> None:
    assert len(LISTS) >= 15, [path for path, _ in LISTS]
    for path, operation in LISTS:
        [limit] = [p for p in operation["parameters"] if p["name"] == "limit"]
        assert limit["in"] == "query", path
        assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, MAX_PAGE), path


@pytest.mark.parametrize("path, operation", LISTS, ids=[path for path, _ in LISTS])
def test_every_list_refuses_a_page_over_500_and_serves_one_of_500(
    path: str, operation: dict[str, Any], admin: Api, database: Database
) -> None:
    url = path.removeprefix("/api/v1")
    for parameter in operation["parameters"]:
        if parameter["in"] == "path":
            make = PATH_RESOURCES.get(parameter["name"])
            value = make(admin, database) if make else MAX_ID
            url = url.replace("{" + parameter["name"] + "}", str(value))
    required = {
        p["name"]: query_value(p["schema"])
        for p in operation["parameters"]
        if p["in"] == "query" and p.get("required")
    }
    for limit in (MAX_PAGE + 1, 1000, 2**31, 10**20):
        body = problem(admin.get(url, **required, limit=limit), 422)
        assert "limit" in body["errors"], (limit, body)
    page = ok(admin.get(url, **required, limit=MAX_PAGE))
    assert set(page) == {"items", "next_cursor"}, page
    assert isinstance(page["items"], list) and len(page["items"]) <= MAX_PAGE


def test_a_page_of_500_is_served_whole_and_the_501st_row_is_on_the_next_page(
    admin: Api, database: Database
) -> None:
    site = unique("PAGE")[:32]
    session = database.session()
    try:
        session.add_all(
            Location(code=unique("P"), name="bin", kind=LocationKind.STORAGE, site=site)
            for _ in range(MAX_PAGE + 1)
        )
        session.commit()
    finally:
        session.close()
    first = ok(admin.get("/locations", site=site, limit=MAX_PAGE))
    assert len(first["items"]) == MAX_PAGE and first["next_cursor"] is not None
    rest = ok(admin.get("/locations", site=site, limit=MAX_PAGE, cursor=first["next_cursor"]))
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert len(ok(admin.get("/locations", site=site))["items"]) == 50  # the default
    problem(admin.get("/locations", site=site, limit=MAX_PAGE + 1), 422)


# --- 2. body size -----------------------------------------------------------------------------


def small_app(backend: Backend, database: Database, **limits: Any) -> Flask:
    return create_app(replace(backend.settings, **limits), database=database, TESTING=True)


def send_json(app: Flask, api: Api, method: str, path: str, data: bytes) -> TestResponse:
    headers = {**bearer(api), "Idempotency-Key": uuid.uuid4().hex}
    return app.test_client().open(
        path, method=method.upper(), data=data, content_type="application/json", headers=headers
    )


def concrete_path(path: str) -> str:
    for name in ("month",):
        path = path.replace("{" + name + "}", MONTH)
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + str(MAX_ID) + path[end + 1 :]
    return path


def test_every_json_operation_refuses_a_body_over_the_limit_with_413(
    backend: Backend, database: Database, connection: Connection
) -> None:
    """Generated from the spec: each operation with a JSON body, sent 2 kB against a 1 kB limit,
    answers 413 problem+json naming the limit, and nothing is stored."""
    app = small_app(backend, database, max_body_bytes=1024)
    admin = Api(app.test_client(), token_for(database, Role.ADMIN))
    data = json.dumps({"note": "n" * 2048}).encode()
    rows = database_rows(connection)
    failures = []
    for operation in OPERATIONS:
        response = send_json(app, admin, operation.method, concrete_path(operation.path), data)
        body = response.get_json(silent=True) or {}
        if response.status_code != 413 or response.content_type != "application/problem+json":
            failures.append(f"{operation.label}: {response.status_code} {body}")
        elif "1024" not in body.get("detail", ""):
            failures.append(f"{operation.label}: 413 without the limit: {body}")
    assert len(OPERATIONS) >= 30
    assert not failures, "\n".join(failures)
    assert database_rows(connection) == rows


def _sized(size: int) -> bytes:
    """A JSON location of exactly ``size`` bytes (its name far too long, so never stored)."""
    body = {"code": "SIZED-1", "kind": "storage", "site": "S1", "name": ""}
    padding = size - len(json.dumps(body).encode())
    body["name"] = "n" * padding
    data = json.dumps(body).encode()
    assert len(data) == size
    return data


def test_the_default_body_limit_is_one_mebibyte_to_the_byte(app: Flask, warehouse: Api) -> None:
    limit = Settings().max_body_bytes
    assert app.config["MAX_CONTENT_LENGTH"] == limit == 1_048_576
    at_limit = send_json(app, warehouse, "post", "/api/v1/locations", _sized(limit))
    assert "name" in problem(at_limit, 422)["errors"]  # read and validated
    over = send_json(app, warehouse, "post", "/api/v1/locations", _sized(limit + 1))
    assert str(limit) in problem(over, 413)["detail"]


# --- uploads, from the environment ------------------------------------------------------------

CLAIM_HEADER = "external_ref,hcpcs,date_of_service,units,billed_amount"


def claims_csv(size: int) -> bytes:
    """A valid claims CSV of at least ``size`` bytes (claims nobody delivered)."""
    lines = [CLAIM_HEADER]
    while sum(len(line) + 2 for line in lines) < size:
        lines.append(f"{unique('MRN')},S9357,2026-03-10,1,400.00")
    return ("\r\n".join(lines) + "\r\n").encode()


def multipart(data: bytes, boundary: str = "limits-boundary") -> tuple[bytes, str]:
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="claims.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def env_app(backend: Backend, database: Database, **variables: str) -> Flask:
    """An app configured the way a deployment is: from INVENTORY_* variables."""
    settings = Settings.from_env(
        {"INVENTORY_DATABASE_URL": backend.url, "INVENTORY_LOG_LEVEL": "WARNING", **variables}
    )
    return create_app(settings, database=database, TESTING=True)


def test_uploads_have_their_own_limit_set_by_inventory_max_upload_bytes(
    backend: Backend, database: Database, connection: Connection
) -> None:
    app = env_app(
        backend,
        database,
        INVENTORY_MAX_BODY_BYTES="2048",
        INVENTORY_MAX_UPLOAD_BYTES="16384",
    )
    finance = Api(app.test_client(), token_for(database, Role.FINANCE))

    def upload(data: bytes) -> TestResponse:
        body, content_type = multipart(data)
        headers = {**bearer(finance), "Idempotency-Key": uuid.uuid4().hex}
        return finance.client.post(
            "/api/v1/reconciliations", data=body, content_type=content_type, headers=headers
        )

    # Over the body limit, under the upload limit: taken.
    taken = ok(upload(claims_csv(8_000)), 201)
    assert taken["claim_lines"] > 50
    rows = database_rows(connection)
    # Over the upload limit: 413, and nothing stored.
    refused = problem(upload(claims_csv(17_000)), 413)
    assert "16384" in refused["detail"]
    # The same claims as JSON are held to the body limit.
    claims = [
        {
            "external_ref": unique("MRN"),
            "hcpcs": "S9357",
            "date_of_service": "2026-03-10",
            "units": 1,
            "billed_amount": "400.00",
        }
        for _ in range(50)
    ]
    data = json.dumps({"claims": claims}).encode()
    assert 2048 < len(data) < 16384
    as_json = send_json(app, finance, "post", "/api/v1/reconciliations", data)
    assert "2048" in problem(as_json, 413)["detail"]
    assert database_rows(connection) == rows


def test_the_default_upload_limit_is_ten_mebibytes(app: Flask, as_role: Callable[..., Api]) -> None:
    finance = as_role(Role.FINANCE)
    limit = Settings().max_upload_bytes
    assert limit == 10_485_760

    def upload(data: bytes) -> TestResponse:
        body, content_type = multipart(data)
        headers = {**bearer(finance), "Idempotency-Key": uuid.uuid4().hex}
        return finance.client.post(
            "/api/v1/reconciliations", data=body, content_type=content_type, headers=headers
        )

    # Twice the body limit: read (and refused for what it is, not for its size).
    assert "file" in problem(upload(b"\x00" * 2 * Settings().max_body_bytes), 422)["errors"]
    assert str(limit) in problem(upload(b"x" * limit), 413)["detail"]


# --- bodies without a Content-Length ------------------------------------------------------


def chunked(client: Any, path: str, data: bytes, content_type: str, headers: dict[str, str]) -> Any:
    """POST ``data`` as gunicorn hands a chunked request to the app: no CONTENT_LENGTH, and
    ``wsgi.input_terminated`` set."""
    return client.post(
        path,
        input_stream=io.BytesIO(data),
        content_type=content_type,
        headers={**headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def _location(padding: bytes) -> bytes:
    body = {"code": unique("CHUNK"), "name": "bin", "kind": "storage", "site": "S1"}
    return json.dumps(body).encode() + padding


CHUNKED_BODIES: dict[str, Callable[[], tuple[bytes, str, str]]] = {
    # Valid JSON followed by 100 kB of whitespace: still valid JSON if it were cut at 2 kB.
    "json-padded": lambda: (_location(b" " * 100_000), "application/json", "/api/v1/locations"),
    # 100 kB of JSON: no longer JSON once cut.
    "json": lambda: (
        json.dumps({"code": "C1", "name": "n" * 100_000}).encode(),
        "application/json",
        "/api/v1/locations",
    ),
    # A claims upload of 40 kB against a 16 kB upload limit.
    "upload": lambda: (*multipart(claims_csv(40_000)), "/api/v1/reconciliations"),
}


# The upload case leaves werkzeug's spooled temporary file unclosed today; that warning would
# otherwise hide the status this test is about.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    "kind, keyed",
    [("json-padded", False), ("json", False), ("upload", False), ("upload", True)],
    ids=["json-padded", "json", "upload", "upload-with-idempotency-key"],
)
def test_a_body_without_a_content_length_is_held_to_the_same_limits(
    backend: Backend, database: Database, connection: Connection, kind: str, keyed: bool
) -> None:
    app = small_app(backend, database, max_body_bytes=2048, max_upload_bytes=16384)
    admin = Api(app.test_client(), token_for(database, Role.ADMIN))
    data, content_type, path = CHUNKED_BODIES[kind]()
    rows = database_rows(connection)
    headers = bearer(admin)
    if keyed:
        headers["Idempotency-Key"] = uuid.uuid4().hex
    response = chunked(admin.client, path, data, content_type, headers)
    assert response.status_code == 413, (len(data), response.status_code, response.get_json())
    problem(response, 413)
    assert database_rows(connection) == rows


# --- 3. slow work -------------------------------------------------------------------------


def postgres_only(backend: Backend) -> None:
    if backend.name != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's; SQLite has no statement time limit")


def test_a_query_past_the_statement_timeout_is_a_503_and_the_app_keeps_serving(
    backend: Backend,
) -> None:
    """The app runs on its own pool (one connection plus one overflow), as in production: a
    connection whose statement was cancelled must go back to the pool in working order, or
    the third request here would wait for a connection that never comes back."""
    postgres_only(backend)
    settings = replace(backend.settings, pg_statement_timeout_ms=100, db_pool_size=1)
    app = create_app(settings, TESTING=True)

    @app.get("/test-only/sleep/<float:seconds>")
    def sleep(seconds: float) -> dict[str, Any]:  # a query that runs as long as asked
        request_session().execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
        return {"slept": seconds}

    @app.get("/test-only/statement-timeout")
    def statement_timeout() -> dict[str, Any]:
        return {"value": request_session().execute(text("SHOW statement_timeout")).scalar()}

    client = app.test_client()
    try:
        assert client.get("/test-only/statement-timeout").get_json() == {"value": "100ms"}
        for _ in range(4):
            started = time.perf_counter()
            response = client.get("/test-only/sleep/5.0")
            elapsed = time.perf_counter() - started
            body = problem(response, 503)
            assert "time limit" in body["detail"], body
            assert response.headers["Retry-After"] == str(settings.retry_after_seconds)
            assert elapsed < 2.5, elapsed  # cancelled, not waited out
        assert client.get("/test-only/sleep/0.0").get_json() == {"slept": 0.0}
        assert client.get("/ready").status_code == 200
    finally:
        app.extensions["inventory.db"].dispose()


@pytest.fixture
def impatient(backend: Backend) -> Iterator[tuple[Flask, Api]]:
    """An app whose database connection carries a 300 ms statement timeout, bound to its own
    transaction that is rolled back afterwards; and a finance caller on it."""
    postgres_only(backend)
    settings = replace(backend.settings, pg_statement_timeout_ms=300)
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            outer = connection.begin()
            database = Database(settings, engine=engine)
            database.bind_to(connection)
            app = create_app(settings, database=database, TESTING=True)
            yield app, Api(app.test_client(), token_for(database, Role.FINANCE))
            outer.rollback()
    finally:
        engine.dispose()


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx"])
def test_a_report_that_runs_past_the_statement_timeout_is_a_503_and_the_next_one_works(
    impatient: tuple[Flask, Api], monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """The report's own session runs a query longer than the limit (its scope is read through
    a pg_sleep first): 503, then the same app answers the same report."""
    _, finance = impatient
    scope_for = costing.scope_for

    def slow_scope_for(session: Any, *args: Any, **kwargs: Any) -> Any:
        session.execute(text("SELECT pg_sleep(5)"))
        return scope_for(session, *args, **kwargs)

    monkeypatch.setattr(costing, "scope_for", slow_scope_for)
    _report_times_out_then_serves_again(
        finance, fmt, lambda: monkeypatch.setattr(costing, "scope_for", scope_for)
    )


# Not the CSV: it is computed while it streams, after its 200 has gone.
@pytest.mark.parametrize("fmt", ["json", "xlsx"])
def test_a_report_whose_shipments_sent_ahead_run_past_the_timeout_is_a_503(
    impatient: tuple[Flask, Api], monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """The shipments query is sent ahead in pipeline mode, not through SQLAlchemy: when it is
    the one running past the limit, the answer is still the 503 problem, and the connection
    comes back usable for the next report."""
    _, finance = impatient
    shipment_query = costing.ReportFacts._shipment_query

    def slow_shipment_query(self: Any, batch: Any) -> Any:
        return select(func.pg_sleep(5))  # never answers within the limit

    monkeypatch.setattr(costing.ReportFacts, "_shipment_query", slow_shipment_query)
    _report_times_out_then_serves_again(
        finance,
        fmt,
        lambda: monkeypatch.setattr(costing.ReportFacts, "_shipment_query", shipment_query),
    )


def _report_times_out_then_serves_again(
    finance: Api, fmt: str, restore: Callable[[], None]
) -> None:
    """March's report answers the 503 time-limit problem within 2.5 s; once ``restore`` has
    undone the slowdown, the same report is a 200 on the same server."""
    params: dict[str, Any] = {"from": "2026-03-01", "to": "2026-03-31", "format": fmt}
    started = time.perf_counter()
    response = finance.get("/reports/per-diem", **params)
    response.close()
    assert time.perf_counter() - started < 2.5
    body = problem(response, 503)
    assert "time limit" in body["detail"]
    restore()
    again = finance.get("/reports/per-diem", **params)
    again.get_data()
    again.close()
    assert again.status_code == 200


# --- streamed exports ---------------------------------------------------------------------


def test_the_per_diem_exports_are_streamed_rows_read_as_they_are_sent(
    as_role: Callable[..., Api], app: Flask, database: Database, connection: Connection
) -> None:
    """The view's own Response (not the test client's wrapper, which always streams): the CSV
    and XLSX downloads are generators, and the CSV rows are queried while the body is sent;
    the JSON report, for contrast, is one body."""
    world = World(as_role, app, database)
    assert world.delivered_kit  # a patient with supplies and a pump on days around today
    finance = world.finance
    window = {
        "from": (today() - timedelta(days=3)).isoformat(),
        "to": (today() + timedelta(days=5)).isoformat(),
        "site": "SITE1",
    }
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    downloads = [
        ("/reports/per-diem", {"format": "csv"}, {}, "text/csv"),
        ("/reports/per-diem", {}, {"Accept": "text/csv"}, "text/csv"),
        ("/reports/per-diem/days", {"format": "csv"}, {}, "text/csv"),
        ("/reports/per-diem/days", {}, {"Accept": "text/csv"}, "text/csv"),
        ("/reports/per-diem", {"format": "xlsx"}, {}, XLSX),
        ("/reports/per-diem", {}, {"Accept": XLSX}, XLSX),
        ("/reports/per-diem", {}, {}, "application/json"),
    ]
    event.listen(connection, "before_cursor_execute", count)
    try:
        for path, params, headers, mimetype in downloads:
            label = (path, params, headers)
            with app.test_request_context(
                f"/api/v1{path}",
                query_string={**window, **params},
                headers={**bearer(finance), **headers},
            ):
                response = app.full_dispatch_request()
                try:
                    assert response.status_code == 200, label
                    assert response.mimetype == mimetype, label
                    before = statements
                    if mimetype == "application/json":
                        assert not response.is_streamed, label
                        assert response.get_json()["rows"], label
                        continue
                    assert response.is_streamed, label
                    assert isinstance(response.response, Iterator), label
                    assert "Content-Length" not in response.headers, label
                    assert response.headers["Content-Disposition"].startswith("attachment")
                    data = b"".join(response.response)
                    if mimetype == XLSX:  # written to a temporary file, sent in chunks
                        assert data.startswith(b"PK"), label
                    else:  # the rows come from the database as they go out
                        assert statements > before, label
                        assert len(data.decode().splitlines()) >= 3, data
                finally:
                    response.close()
    finally:
        event.remove(connection, "before_cursor_execute", count)
