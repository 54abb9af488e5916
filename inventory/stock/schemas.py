from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from inventory.ledger.models import AdjustmentReason, MovementType
from inventory.schemas import (
    MAX_QUANTITY,
    Code,
    Id,
    MoneyField,
    PageArgs,
    Quantity,
    QueryInt,
    StrictInt,
    Text,
    Timestamp,
    page_schema,
)


def LotNumber(**kwargs: Any) -> Code:  # noqa: N802 - reads as a field type
    """A lot number: GS1 AI (10) holds up to 20 characters."""
    return Code(max_length=20, **kwargs)


def Serial(**kwargs: Any) -> Code:  # noqa: N802
    """A serial number: GS1 AI (21) holds up to 20 characters."""
    return Code(max_length=20, **kwargs)


OCCURRED_AT = {
    "description": "When it physically happened (ISO 8601 with offset); defaults to now. "
    "Must not be in the future."
}


class ReceiptLineIn(Schema):
    item_id = Id(required=True)
    quantity = Quantity(required=True)
    unit_cost = MoneyField(required=True)
    location_id = Id(required=True)
    lot = LotNumber(allow_none=True, metadata={"description": "Required for lot-tracked items"})
    expiry = fields.Date(allow_none=True, metadata={"description": "Required with a lot"})
    serials = fields.List(
        Serial(),
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Serial items: one per unit; quantity = number of serials"},
    )


class ReceiptIn(Schema):
    reference = Text(max_length=120, allow_none=True, metadata={"example": "PO-2026-0412"})
    occurred_at = Timestamp(allow_none=True, metadata=OCCURRED_AT)
    note = Text(max_length=2000, min_length=0, allow_none=True)
    lines = fields.List(
        fields.Nested(ReceiptLineIn), required=True, validate=validate.Length(min=1, max=500)
    )


class TransferLineIn(Schema):
    item_id = Id(required=True)
    lot = LotNumber(allow_none=True)
    serial = Serial(allow_none=True)
    quantity = Quantity(required=True)
    from_location_id = Id(required=True)
    to_location_id = Id(required=True)

    @validates_schema
    def different_places(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("from_location_id") == data.get("to_location_id"):
            raise ValidationError("Must differ from from_location_id.", "to_location_id")


class TransferIn(Schema):
    reference = Text(max_length=120, allow_none=True)
    occurred_at = Timestamp(allow_none=True, metadata=OCCURRED_AT)
    note = Text(max_length=2000, min_length=0, allow_none=True)
    lines = fields.List(
        fields.Nested(TransferLineIn), required=True, validate=validate.Length(min=1, max=500)
    )


class AdjustmentLineIn(Schema):
    item_id = Id(required=True)
    lot = LotNumber(allow_none=True)
    serial = Serial(allow_none=True)
    location_id = Id(required=True)
    quantity_delta = StrictInt(
        required=True,
        minimum=-MAX_QUANTITY,
        maximum=MAX_QUANTITY,
        metadata={"description": "Units added (+) or removed (-); never 0", "not": {"enum": [0]}},
    )
    unit_cost = MoneyField(
        allow_none=True,
        metadata={"description": "For units added: defaults to the latest cost of that item/lot"},
    )
    expiry = fields.Date(
        allow_none=True, metadata={"description": "For units added to a lot not seen before"}
    )

    @validates_schema
    def non_zero(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("quantity_delta") == 0:
            raise ValidationError("Must not be 0.", "quantity_delta")


class AdjustmentIn(Schema):
    reason = fields.Enum(AdjustmentReason, by_value=True, required=True)
    note = Text(max_length=2000, min_length=0, allow_none=True)
    reference = Text(max_length=120, allow_none=True)
    occurred_at = Timestamp(allow_none=True, metadata=OCCURRED_AT)
    lines = fields.List(
        fields.Nested(AdjustmentLineIn), required=True, validate=validate.Length(min=1, max=500)
    )


class EndpointOut(Schema):
    type = fields.String(
        metadata={
            "description": "location, or a ledger endpoint: supplier, patient, disposal, adjustment"
        }
    )
    location_id = fields.Integer(allow_none=True)
    code = fields.String(allow_none=True)


class ActorOut(Schema):
    id = fields.Integer()
    name = fields.String()


class MovementOut(Schema):
    id = fields.Integer()
    type = fields.Enum(MovementType, by_value=True)
    document_id = fields.Integer()
    site = fields.String()
    item_id = fields.Integer()
    lot = fields.String(allow_none=True)
    expiry = fields.Date(allow_none=True)
    serial = fields.String(allow_none=True)
    quantity = fields.Integer()
    from_ = fields.Nested(EndpointOut, data_key="from")
    to = fields.Nested(EndpointOut)
    unit_cost = MoneyField()
    total_cost = MoneyField()
    occurred_at = fields.DateTime()
    recorded_at = fields.DateTime()
    actor = fields.Nested(ActorOut)
    reason = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)
    kit_id = fields.Integer(allow_none=True, metadata={"description": "The kit it packs or moves"})


class DocumentOut(Schema):
    id = fields.Integer()
    type = fields.String()
    site = fields.String()
    reference = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    occurred_at = fields.DateTime()
    recorded_at = fields.DateTime()
    actor = fields.Nested(ActorOut)
    total_cost = MoneyField()
    movements = fields.List(fields.Nested(MovementOut))


class StockArgs(PageArgs):
    item_id = QueryInt()
    location_id = QueryInt()
    lot = Text(max_length=20)
    site = Text(max_length=32)
    expiring_before = fields.Date(metadata={"description": "Lots expiring before this date"})
    include_empty = fields.Boolean(
        load_default=False, metadata={"description": "Also list rows with nothing on hand"}
    )


class StockRowOut(Schema):
    id = fields.Integer()
    item_id = fields.Integer()
    sku = fields.String()
    lot = fields.String(allow_none=True)
    expiry = fields.Date(allow_none=True)
    location_id = fields.Integer()
    location_code = fields.String()
    site = fields.String()
    on_hand = fields.Integer()
    reserved = fields.Integer()
    available = fields.Integer()


class MovementArgs(PageArgs):
    item_id = QueryInt()
    lot = Text(max_length=20)
    type = fields.Enum(MovementType, by_value=True)
    from_ = fields.Date(
        data_key="from", metadata={"description": "occurred on or after this date (UTC)"}
    )
    to = fields.Date(metadata={"description": "occurred on or before this date (UTC)"})
    location_id = QueryInt(metadata={"description": "moved into or out of this location"})
    document_id = QueryInt()
    site = Text(max_length=32)
    kit_id = QueryInt(metadata={"description": "movements of this kit's documents"})
    patient_id = QueryInt(metadata={"description": "movements of this patient's kits"})

    @validates_schema
    def ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError("Must not be before 'from'.", "to")


StockPage = page_schema(StockRowOut, "StockPage")
MovementPage = page_schema(MovementOut, "MovementPage")
