from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from inventory.catalog.models import Category, LocationKind, Tracking
from inventory.schemas import Code, MoneyField, PageArgs, StrictBool, StrictInt, Text, page_schema


class ItemIn(Schema):
    sku = Code(required=True, max_length=64)
    name = Text(required=True, max_length=200)
    category = fields.Enum(Category, by_value=True, required=True)
    unit = Text(required=True, max_length=32)
    tracking = fields.Enum(Tracking, by_value=True, required=True)
    gtin = fields.String(
        allow_none=True,
        validate=validate.Regexp(r"^(\d{8}|\d{12}|\d{13}|\d{14})$", error="8, 12, 13 or 14 digits"),
        metadata={"description": "GTIN-8/12/13/14 with a valid check digit; stored as 14 digits"},
    )
    reorder_point = StrictInt(load_default=0, maximum=1_000_000)
    reorder_quantity = StrictInt(load_default=0, maximum=1_000_000)
    daily_rate = MoneyField(
        allow_none=True,
        metadata={"description": "Equipment only: cost per day at a patient's home"},
    )

    @validates_schema
    def equipment_rules(self, data: dict[str, Any], **kwargs: Any) -> None:
        category = data.get("category")
        if category is None:
            return
        if category.is_equipment and data.get("tracking", Tracking.SERIAL) is not Tracking.SERIAL:
            raise ValidationError("Equipment (pump, pole) is tracked by serial.", "tracking")
        if data.get("daily_rate") is not None and not category.is_equipment:
            raise ValidationError("Only equipment (pump, pole) has a daily rate.", "daily_rate")


class ItemPatch(Schema):
    sku = Code(max_length=64)
    name = Text(max_length=200)
    category = fields.Enum(Category, by_value=True)
    unit = Text(max_length=32)
    tracking = fields.Enum(Tracking, by_value=True)
    gtin = fields.String(
        allow_none=True,
        validate=validate.Regexp(r"^(\d{8}|\d{12}|\d{13}|\d{14})$", error="8, 12, 13 or 14 digits"),
    )
    reorder_point = StrictInt(maximum=1_000_000)
    reorder_quantity = StrictInt(maximum=1_000_000)
    daily_rate = MoneyField(allow_none=True)
    active = StrictBool()


class ItemOut(Schema):
    id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    category = fields.Enum(Category, by_value=True)
    unit = fields.String()
    tracking = fields.Enum(Tracking, by_value=True)
    gtin = fields.String(allow_none=True)
    reorder_point = fields.Integer()
    reorder_quantity = fields.Integer()
    daily_rate = MoneyField(allow_none=True)
    is_equipment = fields.Boolean()
    active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ItemArgs(PageArgs):
    category = fields.Enum(Category, by_value=True)
    tracking = fields.Enum(Tracking, by_value=True)
    sku = Text(max_length=64)
    gtin = fields.String(validate=validate.Regexp(r"^[0-9]{8,14}$", error="8 to 14 digits"))
    active = fields.Boolean()


ItemPage = page_schema(ItemOut, "ItemPage")


class LocationIn(Schema):
    code = Code(required=True, max_length=32)
    name = Text(required=True, max_length=120)
    kind = fields.Enum(LocationKind, by_value=True, required=True)
    site = Code(required=True, max_length=32)


class LocationOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    kind = fields.Enum(LocationKind, by_value=True)
    site = fields.String()
    active = fields.Boolean()


class LocationArgs(PageArgs):
    kind = fields.Enum(LocationKind, by_value=True)
    site = Text(max_length=32)


LocationPage = page_schema(LocationOut, "LocationPage")


class ScanIn(Schema):
    barcode = fields.String(
        required=True,
        validate=validate.Length(min=1, max=512),
        metadata={
            "description": "Raw GS1 element string (FNC1 as ASCII 29), (01)…(10)… text, "
            "or a GS1 Digital Link URI",
            "example": "(01)00361234000014(17)271200(10)L24A117",
        },
    )


class ScanOut(Schema):
    gtin = fields.String(allow_none=True)
    item_id = fields.Integer(allow_none=True)
    sku = fields.String(allow_none=True)
    lot = fields.String(allow_none=True)
    expiry = fields.Date(allow_none=True)
    serial = fields.String(allow_none=True)
