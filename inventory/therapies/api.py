"""Therapies and their infusion days."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from inventory.auth import CARE_READERS, CARE_WRITERS, requires
from inventory.blueprint import ID, Blueprint
from inventory.therapies import service
from inventory.therapies.models import InfusionDay
from inventory.therapies.schemas import (
    DiscontinueIn,
    InfusionDayArgs,
    InfusionDayOut,
    InfusionDayPage,
    InfusionDayPatch,
    TherapyArgs,
    TherapyIn,
    TherapyOut,
    TherapyPage,
)
from inventory.web import (
    ETAG_HEADER,
    check_if_match,
    etag_of,
    idempotent,
    session,
    versioned_patch,
)

blp = Blueprint(
    "therapies", __name__, url_prefix="/api/v1", description="Therapies and infusion days"
)


def _day_etag(day: InfusionDay) -> str:
    return etag_of("infusion-day", day.id, day.version)


@blp.route("/therapies")
class Therapies(MethodView):
    @requires(*CARE_READERS)
    @blp.arguments(TherapyArgs, location="query")
    @blp.response(200, TherapyPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List therapies."""
        return service.list_therapies(session(), args)

    @requires(*CARE_WRITERS)
    @idempotent
    @blp.arguments(TherapyIn)
    @blp.response(201, TherapyOut)
    def post(self, fields: dict[str, Any]) -> Any:
        """Start a therapy; its infusion days are created to its end date or a rolling year."""
        return service.create_therapy(session(), fields)


@blp.route(f"/therapies/<{ID}:therapy_id>")
class TherapyById(MethodView):
    @requires(*CARE_READERS)
    @blp.response(200, TherapyOut)
    def get(self, therapy_id: int) -> Any:
        """Read one therapy."""
        return service.get_therapy(session(), therapy_id)


@blp.route(f"/therapies/<{ID}:therapy_id>/infusion-days")
class TherapyDays(MethodView):
    @requires(*CARE_READERS)
    @blp.arguments(InfusionDayArgs, location="query")
    @blp.response(200, InfusionDayPage)
    def get(self, args: dict[str, Any], therapy_id: int) -> dict[str, Any]:
        """The therapy's infusion days, by date; short days list what they still lack."""
        therapy = service.get_therapy(session(), therapy_id)
        return service.list_days(session(), therapy, args)


@blp.route(f"/therapies/<{ID}:therapy_id>/discontinue")
class TherapyDiscontinue(MethodView):
    @requires(*CARE_WRITERS)
    @idempotent
    @blp.arguments(DiscontinueIn)
    @blp.response(200, TherapyOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict[str, Any], therapy_id: int) -> Any:
        """Stop a therapy: cancel later days, release their reservations and the course
        equipment, and schedule the equipment pick-up."""
        therapy = service.get_therapy(session(), therapy_id)
        return service.discontinue(session(), therapy, fields["end_date"], fields.get("note"))


@blp.route(f"/infusion-days/<{ID}:day_id>")
class InfusionDayById(MethodView):
    @requires(*CARE_READERS)
    @blp.response(200, InfusionDayOut, headers=ETAG_HEADER)
    def get(self, day_id: int) -> Any:
        """Read one infusion day, with what it still lacks if short."""
        day = service.get_day(session(), day_id)
        return service.show_day(session(), day), 200, {"ETag": _day_etag(day)}

    @requires(*CARE_WRITERS)
    @versioned_patch
    @blp.arguments(InfusionDayPatch)
    @blp.response(200, InfusionDayOut, headers=ETAG_HEADER)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def patch(self, changes: dict[str, Any], day_id: int) -> Any:
        """Move a day (its reservations are released and, inside the planning horizon,
        re-planned) or cancel it (status: cancelled). Packed days cannot change (409)."""
        day = service.get_day(session(), day_id)
        check_if_match(_day_etag(day))
        day = service.change_day(session(), day, changes)
        return service.show_day(session(), day), 200, {"ETag": _day_etag(day)}
