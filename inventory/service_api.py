"""Service endpoints without auth: liveness, readiness, docs and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import swagger_ui_bundle
from flask import Response, render_template, send_from_directory, url_for
from flask.views import MethodView
from marshmallow import Schema, fields
from sqlalchemy import text

from inventory.blueprint import Blueprint
from inventory.db import READ_ONLY
from inventory.errors import DomainError
from inventory.metrics import exposition
from inventory.schema_version import current_revision, head_revision
from inventory.web import database

blp = Blueprint("service", __name__, description="Liveness, readiness, docs, metrics")
ASSETS = Path(swagger_ui_bundle.swagger_ui_path)


class NotReady(DomainError):
    status = 503
    slug = "not-ready"
    title = "Not ready"


class HealthOut(Schema):
    status = fields.String(metadata={"example": "ok"})


class ReadyOut(Schema):
    status = fields.String(metadata={"example": "ready"})
    database = fields.String()
    schema_revision = fields.String()


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthOut)
    def get(self) -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    @blp.response(200, ReadyOut)
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def get(self) -> dict[str, Any]:
        """Readiness: the database answers and its schema is at the newest migration."""
        db = database()
        try:
            with db.engine.execution_options(**{READ_ONLY: True}).connect() as connection:
                connection.execute(text("SELECT 1"))
                revision = current_revision(connection)
        except Exception:
            raise NotReady("The database does not answer.") from None
        head = head_revision()
        if revision != head:
            raise NotReady(
                f"The database schema is at {revision or 'nothing'}, not {head}: "
                "run 'inventory db upgrade'."
            )
        return {"status": "ready", "database": db.engine.dialect.name, "schema_revision": revision}


@blp.route("/docs")
class Docs(MethodView):
    @blp.doc(responses={"200": {"description": "The API explorer page"}})
    def get(self) -> str:
        """A human-readable API page; its assets are served by this app (no CDN)."""
        return render_template("docs.html")


@blp.route("/docs/init.js", endpoint="docs_init")
@blp.doc(responses={"200": {"description": "Start-up script of the API page"}})
def docs_init() -> Response:
    spec_url = url_for("api-docs.openapi_json")
    script = f"window.ui = SwaggerUIBundle({{url: {spec_url!r}, dom_id: '#swagger-ui'}});"
    return Response(script, mimetype="application/javascript")


@blp.route("/docs/assets/<path:filename>", endpoint="docs_asset")
@blp.doc(responses={"200": {"description": "A static asset of the API page"}})
def docs_asset(filename: str) -> Response:
    return send_from_directory(ASSETS, filename)


@blp.route("/metrics")
@blp.doc(responses={"200": {"description": "Prometheus text format"}})
def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, content_type=content_type)
