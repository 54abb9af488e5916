"""flask-smorest wiring: the blueprints, the spec's security scheme and problem+json errors."""

from __future__ import annotations

import http
from typing import Any

from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from inventory.errors import PROBLEM_JSON
from inventory.schemas import ProblemSchema

API_DESCRIPTION = """\
Supply and equipment inventory for home infusion pharmacies.

* Every `/api/v1` operation needs `Authorization: Bearer <token>`; `x-roles` on each operation
  lists the roles that may call it (401 without a valid token, 403 for another role).
* Errors are RFC 9457 `application/problem+json` with `type`, `title`, `status`, `detail`;
  validation errors add `errors`, a map from field path (e.g. `lines.0.quantity`) to messages,
  and a conflict may add extension members that say more (e.g. `missing`, `infusion_day_ids`).
* Every POST accepts `Idempotency-Key`. PATCH honours `If-Match` with the resource's `ETag`.
* A request body marked required must be sent, even when none of its fields are: without one
  the answer is 422 (send `{}`).
* Money is a decimal string (`"12.5000"`), quantities are integers in units of issue.
* Lists return `{"items": [...], "next_cursor": ...}` and take `limit` (1-500, default 50) and
  `cursor`.

Departures from the written contract, with reasons:
* Ids named inside a request body that do not exist (an item or location on a receipt line)
  answer 422 with the field path, not 404: 404 is kept for the resource in the URL, so a client
  can tell "this receipt has a bad line" from "this URL is wrong".
* A delivery confirmation or return without its required `Idempotency-Key` is 400 (the
  header is missing, not invalid); a signature over 200 kB is 413.
* `GET /movements` takes `from` and `to` as dates bounding `occurred_at`; each row's own
  `from`/`to` is an object naming a location or a ledger endpoint (supplier, patient,
  disposal, adjustment).
* `POST /reconciliations` answers with `matched` as the number of matched claims and lists them
  in `matched_lines`, beside the `billed_not_delivered`, `delivered_not_billed` and
  `unit_mismatches` lists: finance first wants to know how many matched, and the lists of what
  did not.
* The per diem report (`format=csv|xlsx`), its drill-down and a stored reconciliation
  (`format=csv`) also take `format` in the query, the same as the `Accept` header, so a plain
  link can download a file.
"""


class InventoryApi(Api):  # type: ignore[misc]
    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """Errors are rendered by :mod:`inventory.problems`, not by flask-smorest."""

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304) and status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def init_api(app: Flask) -> InventoryApi:
    from inventory import service_api
    from inventory.care.api import blp as care_blp
    from inventory.catalog.api import blp as catalog_blp
    from inventory.deliveries.api import blp as deliveries_blp
    from inventory.equipment.api import blp as equipment_blp
    from inventory.finance.api import blp as finance_blp
    from inventory.kits.api import blp as kits_blp
    from inventory.planning.api import blp as planning_blp
    from inventory.stock.api import blp as stock_blp
    from inventory.therapies.api import blp as therapies_blp
    from inventory.trace.api import blp as trace_blp
    from inventory.users.api import blp as users_blp

    app.config.update(
        API_TITLE="Home infusion inventory",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": API_DESCRIPTION},
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "opaque"}
                }
            },
        },
    )
    api = InventoryApi(app)
    for blueprint in (
        service_api.blp,
        users_blp,
        catalog_blp,
        stock_blp,
        care_blp,
        therapies_blp,
        planning_blp,
        equipment_blp,
        kits_blp,
        trace_blp,
        deliveries_blp,
        finance_blp,
    ):
        api.register_blueprint(blueprint)
    app.extensions["inventory.api"] = api
    return api
