"""Catalog endpoints: items, locations and barcode scans."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from inventory.auth import CATALOG_WRITERS, STOCK_READERS, requires
from inventory.blueprint import ID, Blueprint
from inventory.catalog import service
from inventory.catalog.models import Item
from inventory.catalog.schemas import (
    ItemArgs,
    ItemIn,
    ItemOut,
    ItemPage,
    ItemPatch,
    LocationArgs,
    LocationIn,
    LocationOut,
    LocationPage,
    ScanIn,
    ScanOut,
)
from inventory.web import ETAG_HEADER, check_if_match, etag_of, idempotent, session, versioned_patch

blp = Blueprint("catalog", __name__, url_prefix="/api/v1", description="Items, locations, scans")


def _item_etag(item: Item) -> str:
    return etag_of("item", item.id, item.version)


def _with_etag(body: Any, etag: str, status: int = 200) -> tuple[Any, int, dict[str, str]]:
    return body, status, {"ETag": etag}


@blp.route("/items")
class Items(MethodView):
    @requires(*STOCK_READERS)
    @blp.arguments(ItemArgs, location="query")
    @blp.response(200, ItemPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List catalog items."""
        return service.list_items(session(), args)

    @requires(*CATALOG_WRITERS)
    @idempotent
    @blp.arguments(ItemIn)
    @blp.response(201, ItemOut, headers=ETAG_HEADER)
    def post(self, fields: dict[str, Any]) -> Any:
        """Add an item to the catalog."""
        item = service.create_item(session(), fields)
        return _with_etag(item, _item_etag(item), 201)


@blp.route(f"/items/<{ID}:item_id>")
class ItemById(MethodView):
    @requires(*STOCK_READERS)
    @blp.response(200, ItemOut, headers=ETAG_HEADER)
    def get(self, item_id: int) -> Any:
        """Read one item."""
        item = service.get_item(session(), item_id)
        return _with_etag(item, _item_etag(item))

    @requires(*CATALOG_WRITERS)
    @versioned_patch
    @blp.arguments(ItemPatch)
    @blp.response(200, ItemOut, headers=ETAG_HEADER)
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def patch(self, changes: dict[str, Any], item_id: int) -> Any:
        """Edit an item (honours If-Match)."""
        item = service.get_item(session(), item_id)
        check_if_match(_item_etag(item))
        item = service.update_item(session(), item, changes)
        return _with_etag(item, _item_etag(item))


@blp.route("/locations")
class Locations(MethodView):
    @requires(*STOCK_READERS)
    @blp.arguments(LocationArgs, location="query")
    @blp.response(200, LocationPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List locations."""
        return service.list_locations(session(), args)

    @requires(*CATALOG_WRITERS)
    @idempotent
    @blp.arguments(LocationIn)
    @blp.response(201, LocationOut)
    def post(self, fields: dict[str, Any]) -> Any:
        """Add a location."""
        return service.create_location(session(), fields)


@blp.route("/scans/parse")
class ScanParse(MethodView):
    @requires(*STOCK_READERS)
    @idempotent
    @blp.arguments(ScanIn)
    @blp.response(200, ScanOut)
    def post(self, scan: dict[str, Any]) -> dict[str, Any]:
        """Read a GS1 barcode: GTIN, matching item, lot, expiry (DD=00 → month end), serial."""
        return service.read_scan(session(), scan["barcode"])
