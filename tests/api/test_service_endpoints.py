"""Service endpoints, and the problem+json shape of every kind of error."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import yaml
from flask import Flask
from openapi_spec_validator import validate

from inventory import create_app
from inventory.cli import render_openapi
from inventory.config import Settings
from inventory.db import Database
from tests.builders import problem

ROOT = Path(__file__).resolve().parents[2]


def test_health_answers_ok(app: Flask):
    response = app.test_client().get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_answers_200_when_the_schema_is_at_the_newest_migration(app: Flask):
    body = app.test_client().get("/ready").get_json()
    assert body["status"] == "ready"


def test_ready_answers_503_on_an_unmigrated_database(tmp_path: Path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    app = create_app(settings)
    body = problem(app.test_client().get("/ready"), 503)
    assert "inventory db upgrade" in body["detail"]


def test_ready_answers_503_when_the_database_does_not_answer():
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(settings)
    problem(app.test_client().get("/ready"), 503)


def test_an_api_call_while_postgresql_cannot_be_reached_is_a_503_with_retry_after():
    """A restart or failover is an outage to retry, not an internal error (psycopg raises an
    OperationalError without a SQLSTATE when it cannot connect)."""
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(settings)
    response = app.test_client().get("/api/v1/me", headers={"Authorization": "Bearer x" * 3})
    body = problem(response, 503)
    assert "retry" in body["detail"]
    assert int(response.headers["Retry-After"]) > 0


def test_the_committed_openapi_file_is_what_the_code_generates_and_is_valid():
    committed = (ROOT / "openapi" / "openapi.yaml").read_text(encoding="utf-8")
    assert committed == render_openapi(), "run: inventory openapi write"
    validate(yaml.safe_load(committed))


def test_openapi_json_serves_the_same_spec_as_the_committed_file(app: Flask):
    served = app.test_client().get("/openapi.json").get_json()
    committed = yaml.safe_load((ROOT / "openapi" / "openapi.yaml").read_text(encoding="utf-8"))
    assert served == committed


def test_docs_page_and_its_assets_are_served_by_the_app_itself(app: Flask):
    client = app.test_client()
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    for asset in (
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/docs/init.js",
    ):
        assert asset in html
        response = client.get(asset)
        assert response.status_code == 200
        response.close()


def test_metrics_are_prometheus_text(app: Flask):
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")


def test_an_unknown_path_is_a_404_problem(app: Flask):
    problem(app.test_client().get("/api/v1/no-such-thing"), 404)


def test_a_wrong_method_is_a_405_problem_that_names_the_allowed_methods(app: Flask):
    response = app.test_client().delete("/health")
    problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_malformed_json_is_a_400_problem(app: Flask, warehouse):
    response = app.test_client().post(
        "/api/v1/receipts",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {warehouse.token}"},
    )
    assert "JSON" in problem(response, 400)["detail"]


def test_a_body_over_the_limit_is_a_413_problem(backend, database: Database, warehouse):
    settings = replace(backend.settings, max_body_bytes=2048)
    small = create_app(settings, database=database, TESTING=True)
    response = small.test_client().post(
        "/api/v1/receipts",
        data='{"reference": "' + "x" * 4096 + '"}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {warehouse.token}"},
    )
    assert "2048" in problem(response, 413)["detail"]


def test_an_unexpected_error_is_a_500_problem_without_traceback_and_is_logged_with_its_request_id(
    app: Flask, caplog
):
    @app.get("/boom")
    def boom() -> str:
        patient = "".join(["Ja", "ne Doe, 12 Elm St"])  # runtime data, as a bug would quote it
        raise RuntimeError(f"details that must not leak: {patient}")

    with caplog.at_level(logging.ERROR, logger="inventory"):
        response = app.test_client().get("/boom", headers={"X-Request-ID": "req-boom-1"})
    body = problem(response, 500)
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "Jane" not in text and "RuntimeError" not in text
    assert body["request_id"] == "req-boom-1"
    assert response.headers["X-Request-ID"] == "req-boom-1"
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(logged) == 1
    assert logged[0].request_id == "req-boom-1"
    assert "test_service_endpoints.py" in logged[0].stack  # where it broke...
    assert "Jane" not in logged[0].stack + caplog.text  # ...but not the message (may be PHI)


def test_a_request_id_is_generated_when_none_is_sent(app: Flask):
    response = app.test_client().get("/health")
    assert len(response.headers["X-Request-ID"]) == 32


def test_every_post_accepts_an_idempotency_key_and_every_patch_honours_if_match(app: Flask):
    spec = app.test_client().get("/openapi.json").get_json()
    posts = patches = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "patch", "delete"):
                continue
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            if method == "post" and path.startswith("/api/v1/"):
                posts += 1
                assert "Idempotency-Key" in headers, path
            if method == "patch":
                patches += 1
                assert "If-Match" in headers, path
                assert "412" in operation["responses"], path
    assert posts >= 8 and patches >= 2


def test_a_required_json_body_that_is_missing_is_a_422_problem(app: Flask, warehouse):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {warehouse.token}"}
    item = client.post(
        "/api/v1/items",
        json={"sku": "BODY-1", "name": "n", "category": "ppe", "unit": "ea", "tracking": "none"},
        headers=headers,
    ).get_json()
    response = client.patch(f"/api/v1/items/{item['id']}", headers=headers)
    assert list(problem(response, 422)["errors"]) == ["_schema"]
    response = client.patch(f"/api/v1/items/{item['id']}", json={}, headers=headers)
    assert response.status_code == 200


def test_a_multipart_part_whose_name_cannot_be_read_is_not_a_500(app: Flask, as_role):
    finance = as_role("finance")
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="%0D\xf0\xbc\x86\xb3"\r\n\r\n{}\r\n'
        b'--XX\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\n\r\nx\r\n'
        b"--XX--\r\n"
    )
    response = app.test_client().post(
        "/api/v1/reconciliations",
        data=body,
        content_type="multipart/form-data; boundary=XX",
        headers={"Authorization": f"Bearer {finance.token}", "Idempotency-Key": "odd-part-1"},
    )
    problem(response, 422)


def test_problems_may_carry_extension_members_as_rfc_9457_allows(app: Flask):
    spec = app.test_client().get("/openapi.json").get_json()
    assert spec["components"]["schemas"]["Problem"]["additionalProperties"] is True
