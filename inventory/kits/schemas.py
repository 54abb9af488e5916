from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from inventory.kits.models import KitStatus
from inventory.kits.service import MAX_DAYS_PER_KIT
from inventory.schemas import Id, PageArgs, QueryInt, StrictInt, Text, page_schema
from inventory.therapies.models import InfusionDayStatus


class KitIn(Schema):
    patient_id = Id(required=True)
    infusion_day_ids = fields.List(
        Id(),
        required=True,
        validate=validate.Length(min=1, max=MAX_DAYS_PER_KIT),
        metadata={"description": "The patient's fully reserved days the kit covers"},
    )


class KitDayOut(Schema):
    id = fields.Integer()
    date = fields.Date()
    status = fields.Enum(InfusionDayStatus, by_value=True)


class KitLineOut(Schema):
    item_id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    unit = fields.String()
    lot = fields.String(allow_none=True)
    expiry = fields.Date(allow_none=True)
    serial = fields.String(allow_none=True)
    location_id = fields.Integer(metadata={"description": "Where the units are picked from"})
    location_code = fields.String()
    quantity = fields.Integer()
    packed_quantity = fields.Integer(metadata={"description": "Units scanned so far"})


class KitGapOut(Schema):
    item_id = fields.Integer()
    sku = fields.String(allow_none=True)
    quantity = fields.Integer(metadata={"description": "Units the kit's days need, unreserved"})


class KitOut(Schema):
    id = fields.Integer()
    number = fields.String(metadata={"description": "The kit number printed as a Code 128"})
    patient_id = fields.Integer()
    site = fields.String()
    status = fields.Enum(KitStatus, by_value=True)
    first_day = fields.Date()
    last_day = fields.Date()
    infusion_days = fields.List(fields.Nested(KitDayOut))
    lines = fields.List(fields.Nested(KitLineOut))
    missing = fields.List(
        fields.Nested(KitGapOut),
        metadata={"description": "Demand no reservation covers (after a recall, say)"},
    )
    complete = fields.Boolean(metadata={"description": "Every line scanned, nothing missing"})
    hold_reason = fields.String(allow_none=True)
    staging_location_id = fields.Integer(allow_none=True)
    created_at = fields.AwareDateTime()
    packed_at = fields.AwareDateTime(allow_none=True)
    cancelled_at = fields.AwareDateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    version = fields.Integer()


class KitSummaryOut(Schema):
    id = fields.Integer()
    number = fields.String()
    patient_id = fields.Integer()
    site = fields.String()
    status = fields.Enum(KitStatus, by_value=True)
    first_day = fields.Date()
    last_day = fields.Date()
    hold_reason = fields.String(allow_none=True)
    packed_at = fields.AwareDateTime(allow_none=True)


class KitArgs(PageArgs):
    status = fields.Enum(KitStatus, by_value=True)
    patient_id = QueryInt()
    site = Text(max_length=32)
    day = fields.Date(metadata={"description": "kits covering this date"})


KitPage = page_schema(KitSummaryOut, "KitPage")


class KitScanIn(Schema):
    barcode = Text(
        max_length=512,
        metadata={"description": "A GS1 barcode: element string, (01)... text or Digital Link"},
    )
    item_id = Id()
    lot = Text(max_length=20)
    serial = Text(max_length=20)
    quantity = StrictInt(load_default=1, minimum=1, maximum=10_000)

    @validates_schema
    def one_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("barcode") is None) == (data.get("item_id") is None):
            raise ValidationError("Give either a barcode or an item_id.", "barcode")
        if data.get("barcode") is not None and (data.get("lot") or data.get("serial")):
            raise ValidationError("A barcode carries its own lot and serial.", "lot")


class KitScanResultOut(Schema):
    item_id = fields.Integer()
    lot = fields.String(allow_none=True)
    serial = fields.String(allow_none=True)
    quantity = fields.Integer()
    counted = fields.Integer(metadata={"description": "Units counted on lines of that lot"})
    swapped = fields.Integer(metadata={"description": "Units whose reservation moved to it"})
    filled = fields.Integer(metadata={"description": "Units covering unreserved demand"})


class KitScanOut(Schema):
    scan = fields.Nested(KitScanResultOut)
    kit = fields.Nested(KitOut)


class CancelIn(Schema):
    reason = Text(max_length=200, allow_none=True)


class PickListOut(Schema):
    kit_id = fields.Integer()
    number = fields.String()
    patient_id = fields.Integer()
    site = fields.String()
    status = fields.Enum(KitStatus, by_value=True)
    days = fields.List(fields.Date())
    lines = fields.List(fields.Nested(KitLineOut))
    missing = fields.List(fields.Nested(KitGapOut))
