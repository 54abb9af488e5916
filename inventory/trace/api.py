"""Trace a lot or serial; recall a lot."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from inventory.auth import RECALLERS, TRACE_READERS, current_caller, requires
from inventory.blueprint import Blueprint
from inventory.trace import service
from inventory.trace.schemas import RecallIn, TraceArgs, TraceOut
from inventory.web import idempotent, session

blp = Blueprint("trace", __name__, url_prefix="/api/v1", description="Traceability and recalls")


@blp.route("/trace")
class Trace(MethodView):
    @requires(*TRACE_READERS)
    @blp.arguments(TraceArgs, location="query")
    @blp.response(200, TraceOut)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Every patient, kit and delivery that received the lot (or serial), with dates and
        quantities, and where the rest is now."""
        return service.trace(session(), args["item_id"], args.get("lot"), args.get("serial"))


@blp.route("/recalls")
class Recalls(MethodView):
    @requires(*RECALLERS)
    @idempotent
    @blp.arguments(RecallIn)
    @blp.response(201, TraceOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict[str, Any]) -> Any:
        """Recall a lot: its remaining stock moves to quarantine (reason `recalled`), its
        reservations are released and re-planned onto other lots, kits holding it are held
        until rescanned. Returns the trace."""
        return service.recall(
            session(), current_caller(), fields["item_id"], fields["lot"], fields.get("note")
        )
