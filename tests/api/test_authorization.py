"""Function-level authorization, walked over the whole OpenAPI spec.

The expected roles are written here from the role table in API.md, independently of the code,
so the test catches both a wrong check and a wrong ``x-roles`` in the spec.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask

from inventory.users.models import Role
from tests.builders import Api

A, C, W, D, F = Role.ADMIN, Role.COORDINATOR, Role.WAREHOUSE, Role.DRIVER, Role.FINANCE
STOCK_READ = {A, C, W, F}
STOCK_WRITE = {A, W}

# (method, path) -> roles allowed, from the role table in API.md.
EXPECTED_ROLES: dict[tuple[str, str], set[Role]] = {
    ("get", "/api/v1/items"): STOCK_READ,
    ("post", "/api/v1/items"): STOCK_WRITE,
    ("get", "/api/v1/items/{item_id}"): STOCK_READ,
    ("patch", "/api/v1/items/{item_id}"): STOCK_WRITE,
    ("get", "/api/v1/locations"): STOCK_READ,
    ("post", "/api/v1/locations"): STOCK_WRITE,
    ("post", "/api/v1/scans/parse"): STOCK_READ,
    ("post", "/api/v1/receipts"): STOCK_WRITE,
    ("post", "/api/v1/transfers"): STOCK_WRITE,
    ("post", "/api/v1/adjustments"): STOCK_WRITE,
    ("get", "/api/v1/stock"): STOCK_READ,
    ("get", "/api/v1/movements"): STOCK_READ,
    ("get", "/api/v1/users"): {A},
    ("post", "/api/v1/users"): {A},
    ("get", "/api/v1/users/{user_id}"): {A},
    ("patch", "/api/v1/users/{user_id}"): {A},
    ("post", "/api/v1/users/{user_id}/tokens"): {A},
    ("delete", "/api/v1/tokens/{token_id}"): {A},
    ("get", "/api/v1/me"): {A, C, W, D, F},
}
# Therapies, infusion days, planning: "patients, payers, templates, therapies, infusion days"
# and "planning, reservations, shortages" rows of the table.
CARE_READ, CARE_WRITE = {A, C, W, F}, {A, C}
PLAN_READ, PLAN_WRITE = {A, C, W, F}, {A, C, W}
EXPECTED_ROLES.update(
    {
        ("get", "/api/v1/payers"): CARE_READ,
        ("post", "/api/v1/payers"): CARE_WRITE,
        ("get", "/api/v1/payers/{payer_id}"): CARE_READ,
        ("patch", "/api/v1/payers/{payer_id}"): CARE_WRITE,
        ("get", "/api/v1/payers/{payer_id}/rates/in-force"): CARE_READ,
        ("get", "/api/v1/patients"): CARE_READ,
        ("post", "/api/v1/patients"): CARE_WRITE,
        ("get", "/api/v1/patients/{patient_id}"): CARE_READ,
        ("patch", "/api/v1/patients/{patient_id}"): CARE_WRITE,
        ("get", "/api/v1/kit-templates"): CARE_READ,
        ("post", "/api/v1/kit-templates"): CARE_WRITE,
        ("get", "/api/v1/kit-templates/{template_id}"): CARE_READ,
        ("get", "/api/v1/therapies"): CARE_READ,
        ("post", "/api/v1/therapies"): CARE_WRITE,
        ("get", "/api/v1/therapies/{therapy_id}"): CARE_READ,
        ("get", "/api/v1/therapies/{therapy_id}/infusion-days"): CARE_READ,
        ("post", "/api/v1/therapies/{therapy_id}/discontinue"): CARE_WRITE,
        ("get", "/api/v1/infusion-days/{day_id}"): CARE_READ,
        ("patch", "/api/v1/infusion-days/{day_id}"): CARE_WRITE,
        ("post", "/api/v1/planning/run"): PLAN_WRITE,
        ("post", "/api/v1/infusion-days/{day_id}/reserve"): PLAN_WRITE,
        ("get", "/api/v1/reservations"): PLAN_READ,
        ("get", "/api/v1/shortages"): PLAN_READ,
        ("get", "/api/v1/reorder-suggestions"): PLAN_READ,
    }
)
# "receipts, transfers, adjustments, equipment transitions", "recalls, trace" and
# "kits, pick lists, routes (write)" rows.
KITS = {A, W}
EXPECTED_ROLES.update(
    {
        ("get", "/api/v1/equipment"): STOCK_READ,
        ("get", "/api/v1/equipment/{unit_id}"): STOCK_READ,
        ("get", "/api/v1/equipment/{unit_id}/history"): STOCK_READ,
        ("post", "/api/v1/equipment/{unit_id}/transitions"): STOCK_WRITE,
        ("get", "/api/v1/trace"): {A, C, W, F},
        ("post", "/api/v1/recalls"): {A, C, W},
        ("get", "/api/v1/kits"): KITS,
        ("post", "/api/v1/kits"): KITS,
        ("get", "/api/v1/kits/{kit_id}"): KITS,
        ("get", "/api/v1/kits/{kit_id}/pick-list"): KITS,
        ("post", "/api/v1/kits/{kit_id}/scans"): KITS,
        ("post", "/api/v1/kits/{kit_id}/pack"): KITS,
        ("post", "/api/v1/kits/{kit_id}/cancel"): KITS,
    }
)
# "kits, pick lists, routes (write)" and "own routes, delivery, returns" rows; a driver reads
# only their own routes and kits (others answer 404, tested in test_deliveries).
EXPECTED_ROLES.update(
    {
        ("get", "/api/v1/routes"): {A, W, D},
        ("post", "/api/v1/routes"): KITS,
        ("get", "/api/v1/routes/{route_id}"): {A, W, D},
        ("post", "/api/v1/routes/{route_id}/dispatch"): KITS,
        ("post", "/api/v1/kits/{kit_id}/delivery"): {A, D},
        ("get", "/api/v1/kits/{kit_id}/delivery"): {A, W, D},
        ("post", "/api/v1/kits/{kit_id}/delivery/reversal"): KITS,
        ("get", "/api/v1/deliveries/{delivery_id}/signature"): KITS,
        ("post", "/api/v1/kits/{kit_id}/returns"): {A, D},
        ("get", "/api/v1/kits/{kit_id}/returns"): {A, W, D},
        ("get", "/api/v1/drivers"): KITS,
        ("patch", "/api/v1/drivers/{driver_id}"): KITS,
    }
)
# "reports, reconciliations, periods" (finance): admin and finance only.
FINANCE = {A, F}
EXPECTED_ROLES.update(
    {
        ("get", "/api/v1/reports/per-diem"): FINANCE,
        ("get", "/api/v1/reports/per-diem/days"): FINANCE,
        ("post", "/api/v1/reconciliations"): FINANCE,
        ("get", "/api/v1/reconciliations/{reconciliation_id}"): FINANCE,
        ("get", "/api/v1/periods"): FINANCE,
        ("post", "/api/v1/periods/{month}/close"): FINANCE,
    }
)


def _operations(app: Flask) -> list[tuple[str, str, dict]]:
    spec = app.test_client().get("/openapi.json").get_json()
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _call(app: Flask, method: str, path: str, token: str | None):
    url = re.sub(r"\{[^}]+\}", "2147483647", path)  # an id nothing has
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return app.test_client().open(url, method=method.upper(), json={}, headers=headers)


def test_every_api_operation_is_in_the_role_table_and_documents_its_roles(app: Flask):
    operations = _operations(app)
    assert {(m, p) for m, p, _ in operations} == set(EXPECTED_ROLES)
    for method, path, operation in operations:
        assert set(operation["x-roles"]) == {r.value for r in EXPECTED_ROLES[(method, path)]}, path
        assert operation["security"] == [{"bearerAuth": []}]
        assert {"401", "403"} <= set(operation["responses"])


def test_every_api_operation_answers_401_without_a_valid_token(app: Flask):
    for method, path, _ in _operations(app):
        for token in (None, "inv_not-a-real-token"):
            response = _call(app, method, path, token)
            assert response.status_code == 401, (method, path, response.get_json())
            assert response.content_type == "application/problem+json"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("role", list(Role))
def test_every_api_operation_answers_403_to_each_role_the_table_does_not_allow(
    app: Flask, as_role, role: Role
):
    api: Api = as_role(role)
    for method, path, _ in _operations(app):
        response = _call(app, method, path, api.token)
        if role in EXPECTED_ROLES[(method, path)]:
            assert response.status_code not in (401, 403), (method, path, role)
        else:
            assert response.status_code == 403, (method, path, role, response.status_code)
            assert response.content_type == "application/problem+json"
