from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema

from inventory.catalog.models import LocationKind
from inventory.kits.models import KitStatus
from inventory.ledger.models import EquipmentStatus, MovementType
from inventory.schemas import Id, QueryInt, Text


class TraceArgs(Schema):
    item_id = QueryInt(required=True)
    lot = Text(max_length=20)
    serial = Text(max_length=20)

    @validates_schema
    def one_of(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("lot") is None) == (data.get("serial") is None):
            raise ValidationError("Give exactly one of lot and serial.", "lot")


class RecallIn(Schema):
    item_id = Id(required=True)
    lot = Text(max_length=20, required=True)
    note = Text(max_length=1000, allow_none=True)


class TracePatientOut(Schema):
    patient_id = fields.Integer()
    kit_ids = fields.List(fields.Integer())
    packed_quantity = fields.Integer()
    delivered_quantity = fields.Integer()
    first_day = fields.Date()
    last_day = fields.Date()


class TraceKitOut(Schema):
    kit_id = fields.Integer()
    number = fields.String()
    patient_id = fields.Integer()
    status = fields.Enum(KitStatus, by_value=True)
    first_day = fields.Date()
    last_day = fields.Date()
    held_quantity = fields.Integer(metadata={"description": "Units the kit holds reserved now"})
    packed_quantity = fields.Integer(metadata={"description": "Units packed into it (ledger)"})
    delivered_quantity = fields.Integer()
    packed_at = fields.AwareDateTime(allow_none=True)


class TraceDeliveryOut(Schema):
    kit_id = fields.Integer()
    patient_id = fields.Integer()
    quantity = fields.Integer()
    occurred_at = fields.AwareDateTime()


class TraceReceiptOut(Schema):
    document_id = fields.Integer()
    type = fields.Enum(MovementType, by_value=True)
    reference = fields.String(allow_none=True)
    quantity = fields.Integer()
    location_id = fields.Integer(allow_none=True)
    occurred_at = fields.AwareDateTime()


class TracePlaceOut(Schema):
    location_id = fields.Integer()
    location_code = fields.String()
    kind = fields.Enum(LocationKind, by_value=True)
    site = fields.String()
    on_hand = fields.Integer()
    reserved = fields.Integer()


class TraceOut(Schema):
    item_id = fields.Integer()
    sku = fields.String()
    lot = fields.String(allow_none=True)
    expiry = fields.Date(allow_none=True)
    recalled_at = fields.AwareDateTime(allow_none=True)
    serial = fields.String(allow_none=True)
    status = fields.Enum(EquipmentStatus, by_value=True, allow_none=True)
    at_patient_id = fields.Integer(allow_none=True)
    patients = fields.List(fields.Nested(TracePatientOut))
    kits = fields.List(fields.Nested(TraceKitOut))
    deliveries = fields.List(fields.Nested(TraceDeliveryOut))
    received = fields.List(fields.Nested(TraceReceiptOut))
    on_hand = fields.List(
        fields.Nested(TracePlaceOut), metadata={"description": "Where the rest is now"}
    )
    quarantined_quantity = fields.Integer()
    disposed_quantity = fields.Integer()
