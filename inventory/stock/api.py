"""Stock endpoints: receipts, transfers, adjustments, stock on hand and the ledger."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from inventory.auth import STOCK_READERS, STOCK_WRITERS, current_caller, requires
from inventory.blueprint import Blueprint
from inventory.stock import service
from inventory.stock.schemas import (
    AdjustmentIn,
    DocumentOut,
    MovementArgs,
    MovementPage,
    ReceiptIn,
    StockArgs,
    StockPage,
    TransferIn,
)
from inventory.web import idempotent, session

blp = Blueprint("stock", __name__, url_prefix="/api/v1", description="Stock and its ledger")

_CONFLICT = {"description": "Not enough available stock, or another business rule refused it"}


@blp.route("/receipts")
class Receipts(MethodView):
    @requires(*STOCK_WRITERS)
    @idempotent
    @blp.arguments(ReceiptIn)
    @blp.response(201, DocumentOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, receipt: dict[str, Any]) -> dict[str, Any]:
        """Receive a vendor delivery: every line or none."""
        document = service.receive(session(), current_caller(), receipt)
        return service.document_view(session(), document)


@blp.route("/transfers")
class Transfers(MethodView):
    @requires(*STOCK_WRITERS)
    @idempotent
    @blp.arguments(TransferIn)
    @blp.response(201, DocumentOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, transfer: dict[str, Any]) -> dict[str, Any]:
        """Move units between locations; reserved units stay put."""
        document = service.transfer(session(), current_caller(), transfer)
        return service.document_view(session(), document)


@blp.route("/adjustments")
class Adjustments(MethodView):
    @requires(*STOCK_WRITERS)
    @idempotent
    @blp.arguments(AdjustmentIn)
    @blp.response(201, DocumentOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, adjustment: dict[str, Any]) -> dict[str, Any]:
        """Correct stock (count, damaged, expired, recalled, lost, found); never below zero."""
        document = service.adjust(session(), current_caller(), adjustment)
        return service.document_view(session(), document)


@blp.route("/stock")
class Stock(MethodView):
    @requires(*STOCK_READERS)
    @blp.arguments(StockArgs, location="query")
    @blp.response(200, StockPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Stock by item, lot and location: on hand, reserved, available."""
        return service.list_stock(session(), args)


@blp.route("/movements")
class Movements(MethodView):
    @requires(*STOCK_READERS)
    @blp.arguments(MovementArgs, location="query")
    @blp.response(200, MovementPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The ledger: every stock movement, oldest first."""
        return service.list_movements(session(), args)
