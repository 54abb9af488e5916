"""Routes, dispatch, delivery confirmation from the phone, returns and reversals."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView

from inventory.auth import (
    DELIVERERS,
    KIT_WORKERS,
    ROUTE_READERS,
    current_caller,
    requires,
)
from inventory.blueprint import ID, Blueprint
from inventory.deliveries import confirm, returns, service
from inventory.deliveries.schemas import (
    DeliveryIn,
    DeliveryList,
    DeliveryOut,
    DriverArgs,
    DriverOut,
    DriverPage,
    DriverPatch,
    ReturnIn,
    ReturnList,
    ReturnOut,
    ReversalIn,
    RouteArgs,
    RouteIn,
    RouteOut,
    RoutePage,
)
from inventory.kits import service as kits
from inventory.kits.schemas import KitOut
from inventory.web import (
    ETAG_HEADER,
    check_if_match,
    etag_of,
    honours_if_match,
    idempotent,
    if_match_header,
    session,
    versioned_patch,
)

blp = Blueprint(
    "deliveries", __name__, url_prefix="/api/v1", description="Routes, deliveries and returns"
)


def _route_response(route_id: int, status: int = 200) -> tuple[dict[str, Any], int, dict[str, str]]:
    route = service.get_route(session(), current_caller(), route_id)
    return service.route_view(session(), route), status, {"ETag": service.etag(route)}


@blp.route("/routes")
class Routes(MethodView):
    @requires(*ROUTE_READERS)
    @blp.arguments(RouteArgs, location="query")
    @blp.response(200, RoutePage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Routes by date, status, driver or site. A driver sees only their own."""
        return service.list_routes(session(), current_caller(), args)

    @requires(*KIT_WORKERS)
    @idempotent
    @blp.arguments(RouteIn)
    @blp.response(201, RouteOut, headers=ETAG_HEADER)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict[str, Any]) -> Any:
        """A driver's route for a date: packed kits (or kits whose delivery failed), in stop
        order."""
        route = service.create_route(
            session(),
            current_caller(),
            fields["driver_id"],
            fields["date"],
            fields["kit_ids"],
            pickup_kit_ids=fields["pickup_kit_ids"],
        )
        return _route_response(route.id, 201)


@blp.route(f"/routes/<{ID}:route_id>")
class RouteById(MethodView):
    @requires(*ROUTE_READERS)
    @blp.response(200, RouteOut, headers=ETAG_HEADER)
    def get(self, route_id: int) -> Any:
        """The route's stops: delivery address, kit number and the items to hand over, nothing
        more about the patient. Another driver's route is 404."""
        return _route_response(route_id)


@blp.route(f"/routes/<{ID}:route_id>/dispatch")
class Dispatch(MethodView):
    @requires(*KIT_WORKERS)
    @idempotent
    @honours_if_match
    @blp.response(200, RouteOut, headers=ETAG_HEADER)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def post(self, route_id: int) -> Any:
        """Kits → dispatched; their stock moves from staging to the driver's vehicle."""
        route = service.get_route(session(), current_caller(), route_id)
        service.dispatch(session(), current_caller(), route, if_match=if_match_header())
        return _route_response(route_id)


@blp.route(f"/kits/<{ID}:kit_id>/delivery")
class KitDelivery(MethodView):
    @requires(*DELIVERERS)
    @idempotent(required=True)
    @blp.arguments(DeliveryIn)
    @blp.response(201, DeliveryOut)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    def post(self, fields: dict[str, Any], kit_id: int) -> Any:
        """Confirm a stop from the phone (Idempotency-Key required). Delivered: stock vehicle →
        patient, days delivered, equipment at the patient from `occurred_at`. Failed: a reason;
        the kit stays on the vehicle for a later route, or is cancelled back to storage."""
        caller = current_caller()
        kit = service.kit_for(session(), caller, kit_id)
        delivery = confirm.confirm(session(), caller, kit, fields)
        return confirm.delivery_view(delivery), 201

    @requires(*ROUTE_READERS)
    @blp.response(200, DeliveryList)
    def get(self, kit_id: int) -> Any:
        """Every confirmation of the kit, with any reversal."""
        kit = service.kit_for(session(), current_caller(), kit_id)
        return {"items": confirm.deliveries_of(session(), kit)}


@blp.route(f"/kits/<{ID}:kit_id>/delivery/reversal")
class Reversal(MethodView):
    @requires(*KIT_WORKERS)
    @idempotent
    @blp.arguments(ReversalIn)
    @blp.response(200, KitOut, headers=ETAG_HEADER)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict[str, Any], kit_id: int) -> Any:
        """Undo a delivery confirmed by mistake, with a reason, through compensating movements
        (patient → vehicle). The kit is dispatched again; nothing recorded is edited."""
        kit = kits.get_kit(session(), kit_id)
        confirm.reverse(session(), current_caller(), kit, fields["reason"])
        kit = kits.get_kit(session(), kit_id)
        return kits.view(session(), kit), 200, {"ETag": kits.etag(kit)}


@blp.route(f"/deliveries/<{ID}:delivery_id>/signature")
class SignatureImage(MethodView):
    @requires(*KIT_WORKERS)
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="image/png")
    def get(self, delivery_id: int) -> Any:
        """The recipient's signature, as the phone captured it."""
        png = confirm.signature_png(session(), delivery_id)
        return Response(png, mimetype="image/png", headers={"Cache-Control": "private, no-store"})


@blp.route(f"/kits/<{ID}:kit_id>/returns")
class KitReturns(MethodView):
    @requires(*DELIVERERS)
    @idempotent(required=True)
    @blp.arguments(ReturnIn)
    @blp.response(201, ReturnOut)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict[str, Any], kit_id: int) -> Any:
        """Goods back from the patient (Idempotency-Key required): unopened to quarantine
        (restock after inspection with a transfer), opened, damaged or expired to disposal as
        waste, equipment to cleaning as dirty. Valued at delivered cost. More than was
        delivered is 409."""
        caller = current_caller()
        kit = service.kit_for(session(), caller, kit_id)
        kit_return = returns.record_return(session(), caller, kit, fields)
        return returns.return_view(kit_return), 201

    @requires(*ROUTE_READERS)
    @blp.response(200, ReturnList)
    def get(self, kit_id: int) -> Any:
        """What came back from the kit, valued at cost."""
        kit = service.kit_for(session(), current_caller(), kit_id)
        return {"items": returns.returns_of(session(), kit)}


@blp.route("/drivers")
class Drivers(MethodView):
    @requires(*KIT_WORKERS)
    @blp.arguments(DriverArgs, location="query")
    @blp.response(200, DriverPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Drivers and the vehicle location each one's dispatched stock rides in."""
        return service.list_drivers(session(), args)


@blp.route(f"/drivers/<{ID}:driver_id>")
class DriverById(MethodView):
    @requires(*KIT_WORKERS)
    @versioned_patch
    @blp.arguments(DriverPatch)
    @blp.response(200, DriverOut, headers=ETAG_HEADER)
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def patch(self, changes: dict[str, Any], driver_id: int) -> Any:
        """Assign a driver's vehicle (warehouse staff do; honours If-Match)."""
        driver = service.get_driver(session(), driver_id)
        check_if_match(etag_of("user", driver.id, driver.version))
        driver = service.assign_vehicle(session(), driver, changes["vehicle_location_id"])
        return (
            service.driver_view(driver),
            200,
            {"ETag": etag_of("user", driver.id, driver.version)},
        )
