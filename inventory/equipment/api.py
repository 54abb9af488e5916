"""Equipment: serialized pumps and poles, their lifecycle and history."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from inventory.auth import STOCK_READERS, STOCK_WRITERS, current_caller, requires
from inventory.blueprint import ID, Blueprint
from inventory.equipment import service
from inventory.equipment.schemas import (
    EquipmentArgs,
    EquipmentHistoryOut,
    EquipmentOut,
    EquipmentPage,
    TransitionIn,
)
from inventory.web import ETAG_HEADER, honours_if_match, idempotent, if_match_header, session

blp = Blueprint("equipment", __name__, url_prefix="/api/v1", description="Serialized equipment")


@blp.route("/equipment")
class Equipment(MethodView):
    @requires(*STOCK_READERS)
    @blp.arguments(EquipmentArgs, location="query")
    @blp.response(200, EquipmentPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Serial units with status, patient and preventive maintenance date."""
        return service.list_units(session(), args)


@blp.route(f"/equipment/<{ID}:unit_id>")
class EquipmentById(MethodView):
    @requires(*STOCK_READERS)
    @blp.response(200, EquipmentOut, headers=ETAG_HEADER)
    def get(self, unit_id: int) -> Any:
        """One unit, with the transitions it may make now."""
        unit = service.get_unit(session(), unit_id)
        return service.unit_view(unit), 200, {"ETag": service.etag(unit)}


@blp.route(f"/equipment/<{ID}:unit_id>/transitions")
class Transitions(MethodView):
    @requires(*STOCK_WRITERS)
    @idempotent
    @honours_if_match
    @blp.arguments(TransitionIn)
    @blp.response(200, EquipmentOut, headers=ETAG_HEADER)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def post(self, fields: dict[str, Any], unit_id: int) -> Any:
        """Move a unit: dirty → cleaning → available; cleaning → repair → available;
        any → retired (a unit in stock leaves it for disposal). `pm_due` may be set with any
        legal move; a unit past its `pm_due` cannot be reserved or packed."""
        unit = service.get_unit(session(), unit_id)
        unit = service.transition(
            session(), current_caller(), unit, fields, if_match=if_match_header()
        )
        return service.unit_view(unit), 200, {"ETag": service.etag(unit)}


@blp.route(f"/equipment/<{ID}:unit_id>/history")
class History(MethodView):
    @requires(*STOCK_READERS)
    @blp.response(200, EquipmentHistoryOut)
    def get(self, unit_id: int) -> dict[str, Any]:
        """Every patient and date range the unit was at, its kits and its status changes."""
        return service.history(session(), service.get_unit(session(), unit_id))
