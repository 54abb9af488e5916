"""Planning runs, reservations, shortages and reorder suggestions."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from inventory.auth import PLANNING_READERS, PLANNING_WRITERS, requires
from inventory.blueprint import ID, Blueprint
from inventory.planning import service
from inventory.planning.schemas import (
    HorizonArgs,
    PlanningRunIn,
    PlanResultOut,
    ReorderList,
    ReservationArgs,
    ReservationPage,
    ShortageList,
)
from inventory.therapies import service as therapies
from inventory.web import idempotent, session

blp = Blueprint(
    "planning",
    __name__,
    url_prefix="/api/v1",
    description="Reservations against infusion days, shortages, reorder suggestions",
)


@blp.route("/planning/run")
class PlanningRun(MethodView):
    @requires(*PLANNING_WRITERS)
    @idempotent
    @blp.arguments(PlanningRunIn)
    @blp.response(200, PlanResultOut)
    def post(self, fields: dict[str, Any]) -> Any:
        """Reserve template supplies (FEFO) for every infusion day in the horizon, and course
        equipment by serial. Idempotent: nothing changed, nothing new reserved."""
        return service.run(session(), fields["horizon_days"], fields.get("site"))


@blp.route(f"/infusion-days/<{ID}:day_id>/reserve")
class ReserveDay(MethodView):
    @requires(*PLANNING_WRITERS)
    @idempotent
    @blp.response(200, PlanResultOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, day_id: int) -> Any:
        """Reserve what one infusion day still lacks."""
        return service.reserve_day(session(), therapies.get_day(session(), day_id))


@blp.route("/reservations")
class Reservations(MethodView):
    @requires(*PLANNING_READERS)
    @blp.arguments(ReservationArgs, location="query")
    @blp.response(200, ReservationPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Reservations, filterable by day, therapy, item, lot and status."""
        return service.list_reservations(session(), args)


@blp.route("/shortages")
class Shortages(MethodView):
    @requires(*PLANNING_READERS)
    @blp.arguments(HorizonArgs, location="query")
    @blp.response(200, ShortageList)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Per item: unreserved demand over the horizon against what is available."""
        return {"items": service.shortages(session(), args["horizon_days"], args.get("site"))}


@blp.route("/reorder-suggestions")
class ReorderSuggestions(MethodView):
    @requires(*PLANNING_READERS)
    @blp.arguments(HorizonArgs, location="query")
    @blp.response(200, ReorderList)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Items whose projected available falls below their reorder point."""
        suggestions = service.reorder_suggestions(session(), args["horizon_days"], args.get("site"))
        return {"items": suggestions}
