"""Kits: build from reserved days, pick list (JSON or a printable page), scan, pack, cancel."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView

from inventory.auth import KIT_WORKERS, current_caller, requires
from inventory.blueprint import ID, Blueprint
from inventory.kits import labels, scanning, service
from inventory.kits.schemas import (
    CancelIn,
    KitArgs,
    KitIn,
    KitOut,
    KitPage,
    KitScanIn,
    KitScanOut,
    PickListOut,
)
from inventory.web import ETAG_HEADER, honours_if_match, idempotent, if_match_header, session

blp = Blueprint("kits", __name__, url_prefix="/api/v1", description="Kit packing by barcode")

_CONFLICT = {"description": "A scan refused, a kit incomplete, or a state conflict"}


def _kit_response(kit_id: int, status: int = 200) -> tuple[dict[str, Any], int, dict[str, str]]:
    kit = service.get_kit(session(), kit_id)
    return service.view(session(), kit), status, {"ETag": service.etag(kit)}


@blp.route("/kits")
class Kits(MethodView):
    @requires(*KIT_WORKERS)
    @blp.arguments(KitArgs, location="query")
    @blp.response(200, KitPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List kits, newest last; filter by status, patient, site or a covered date."""
        return service.list_kits(session(), args)

    @requires(*KIT_WORKERS)
    @idempotent
    @blp.arguments(KitIn)
    @blp.response(201, KitOut, headers=ETAG_HEADER)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict[str, Any]) -> Any:
        """Build a kit from the patient's fully reserved days (409 if any is not), adding the
        course equipment when the patient has none at home yet."""
        kit = service.build(
            session(), current_caller(), fields["patient_id"], fields["infusion_day_ids"]
        )
        return _kit_response(kit.id, 201)


@blp.route(f"/kits/<{ID}:kit_id>")
class KitById(MethodView):
    @requires(*KIT_WORKERS)
    @blp.response(200, KitOut, headers=ETAG_HEADER)
    def get(self, kit_id: int) -> Any:
        """A kit with its lines (reservations by item, lot, serial and bin), what is still
        missing, and whether it is complete."""
        return _kit_response(kit_id)


_HTML = {"text/html": {"schema": {"type": "string"}}}


@blp.route(f"/kits/<{ID}:kit_id>/pick-list")
class PickList(MethodView):
    @requires(*KIT_WORKERS)
    @blp.response(200, PickListOut)
    @blp.doc(
        responses={
            "200": {
                "description": "JSON lines sorted by bin; with `Accept: text/html` a printable "
                "one-page pick list (or, once packed, the delivery ticket with a signature line)",
                "content": {"application/json": {"schema": PickListOut}, **_HTML},
            }
        }
    )
    def get(self, kit_id: int) -> Any:
        """The pick list, sorted by location code. `Accept: text/html` gives the printable
        page: the kit number as a Code 128 barcode, the delivery label, the days covered,
        and each line with bin, item, lot, expiry, quantity and a check box."""
        kit = service.get_kit(session(), kit_id)
        wanted = request.accept_mimetypes.best_match(["application/json", "text/html"])
        if wanted == "text/html":
            return Response(labels.render(session(), kit), mimetype="text/html")
        return service.pick_list(session(), kit)


@blp.route(f"/kits/<{ID}:kit_id>/scans")
class Scans(MethodView):
    @requires(*KIT_WORKERS)
    @idempotent
    @honours_if_match
    @blp.arguments(KitScanIn)
    @blp.response(200, KitScanOut, headers=ETAG_HEADER)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def post(self, fields: dict[str, Any], kit_id: int) -> Any:
        """Scan units into the kit (a GS1 barcode, or item_id with lot or serial). 409 with a
        `reason`: not_in_kit, unknown_lot, unknown_serial, expired, recalled, quarantined,
        expires_before_last_day, too_many, insufficient_lot_stock, pm_overdue,
        unit_not_available. A good lot other than the reserved one takes the reservation over."""
        kit = service.get_kit(session(), kit_id)
        result = scanning.scan(session(), kit, fields, if_match=if_match_header())
        body, _, headers = _kit_response(kit_id)
        return {"scan": result, "kit": body}, 200, headers


@blp.route(f"/kits/<{ID}:kit_id>/pack")
class Pack(MethodView):
    @requires(*KIT_WORKERS)
    @idempotent
    @honours_if_match
    @blp.response(200, KitOut, headers=ETAG_HEADER)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def post(self, kit_id: int) -> Any:
        """Close a fully scanned kit: storage to staging in the ledger. 409 lists what is
        missing (`missing[]`) otherwise."""
        kit = service.get_kit(session(), kit_id)
        service.pack(session(), current_caller(), kit, if_match=if_match_header())
        return _kit_response(kit_id)


@blp.route(f"/kits/<{ID}:kit_id>/cancel")
class Cancel(MethodView):
    @requires(*KIT_WORKERS)
    @idempotent
    @honours_if_match
    @blp.arguments(CancelIn)
    @blp.response(200, KitOut, headers=ETAG_HEADER)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def post(self, fields: dict[str, Any], kit_id: int) -> Any:
        """Cancel an open or packed kit: reservations released, packed units back on their
        shelves through the ledger, its days free to be planned again."""
        kit = service.get_kit(session(), kit_id)
        service.cancel(
            session(), current_caller(), kit, fields.get("reason"), if_match=if_match_header()
        )
        return _kit_response(kit_id)
