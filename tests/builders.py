"""Small builders for test data: unique references, sensible defaults, one line each to call."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from inventory.catalog.gs1 import normalize_gtin
from inventory.db import Database
from inventory.demo.catalog import gtin14
from inventory.users import service as users
from inventory.users.models import Role

_sequence = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_sequence):05d}"


def gtin_for(number: int) -> str:
    """A valid GTIN-14 from a running number (check digit computed by the GS1 rule)."""
    return normalize_gtin(gtin14(f"0{990000000000 + number:012d}"))


def token_for(database: Database, role: Role, **fields: Any) -> str:
    with database.transaction() as session:
        user = users.create_user(
            session, {"name": unique(f"test {role.value}"), "role": role, **fields}
        )
        return users.issue_token(session, user).secret


@dataclass
class Api:
    """A test client that speaks as one role: ``api.post("/receipts", {...})``."""

    client: FlaskClient
    token: str

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> TestResponse:
        return self.client.get(
            f"/api/v1{path}", query_string=params, headers=self._headers(headers)
        )

    def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> TestResponse:
        return self.client.post(
            f"/api/v1{path}",
            data=json.dumps(body if body is not None else {}),
            content_type="application/json",
            headers=self._headers(headers),
        )

    def patch(self, path: str, body: Any, headers: dict[str, str] | None = None) -> TestResponse:
        return self.client.patch(
            f"/api/v1{path}",
            data=json.dumps(body),
            content_type="application/json",
            headers=self._headers(headers),
        )

    def delete(self, path: str, headers: dict[str, str] | None = None) -> TestResponse:
        return self.client.delete(f"/api/v1{path}", headers=self._headers(headers))


def ok(response: TestResponse, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return body


class Catalog:
    """Builds items, locations and stock through the API, as warehouse staff would."""

    def __init__(self, api: Api, app: Flask) -> None:
        self.api = api
        self.app = app

    def location(self, kind: str = "storage", site: str = "SITE1", **fields: Any) -> dict[str, Any]:
        body = {
            "code": unique(kind.upper()),
            "name": f"{kind} bin",
            "kind": kind,
            "site": site,
            **fields,
        }
        return ok(self.api.post("/locations", body), 201)

    def item(self, tracking: str = "lot", category: str = "flush", **fields: Any) -> dict[str, Any]:
        number = next(_sequence)
        body = {
            "sku": f"SKU-{number:05d}",
            "name": f"Test item {number}",
            "category": category,
            "unit": "each",
            "tracking": tracking,
            "gtin": gtin_for(number),
            **fields,
        }
        if category in ("pump", "pole"):
            body.setdefault("daily_rate", "10.0000")
        return ok(self.api.post("/items", body), 201)

    def receive(
        self,
        item: dict[str, Any],
        location: dict[str, Any],
        quantity: int,
        unit_cost: str = "1.0000",
        lot: str | None = None,
        expiry: date | None = None,
        serials: list[str] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        line: dict[str, Any] = {
            "item_id": item["id"],
            "quantity": quantity,
            "unit_cost": unit_cost,
            "location_id": location["id"],
        }
        if item["tracking"] == "lot":
            line["lot"] = lot or unique("LOT")
            line["expiry"] = (expiry or date.today() + timedelta(days=365)).isoformat()
        if item["tracking"] == "serial":
            line["serials"] = serials or [unique("SN") for _ in range(quantity)]
        return ok(
            self.api.post("/receipts", {"reference": unique("PO"), "lines": [line], **fields}), 201
        )


def money(value: str) -> Decimal:
    return Decimal(value)
