from __future__ import annotations

from marshmallow import Schema, fields

from inventory.ledger.models import ReservationStatus
from inventory.schemas import PageArgs, QueryInt, StrictInt, Text, page_schema


class PlanningRunIn(Schema):
    horizon_days = StrictInt(
        load_default=14,
        minimum=1,
        maximum=90,
        metadata={"description": "Days ahead to plan, today included (1-90)"},
    )
    site = Text(max_length=32, allow_none=True)


class ShortLineOut(Schema):
    infusion_day_id = fields.Integer()
    item_id = fields.Integer()
    missing = fields.Integer()


class PlanResultOut(Schema):
    reserved_lines = fields.Integer(metadata={"description": "Reservation lines created"})
    short_lines = fields.Integer(metadata={"description": "Lines still short after the run"})
    days_fully_reserved = fields.Integer()
    days_short = fields.Integer()
    days_considered = fields.Integer()
    equipment_reserved = fields.Integer()
    equipment_short = fields.Integer()
    horizon_end = fields.Date(allow_none=True)
    short = fields.List(fields.Nested(ShortLineOut))


class ReservationArgs(PageArgs):
    infusion_day_id = QueryInt()
    therapy_id = QueryInt()
    item_id = QueryInt()
    lot = Text(max_length=20)
    status = fields.Enum(ReservationStatus, by_value=True)
    kit_id = QueryInt()


class ReservationOut(Schema):
    id = fields.Integer()
    therapy_id = fields.Integer()
    infusion_day_id = fields.Integer(allow_none=True)
    item_id = fields.Integer()
    lot = fields.String(allow_none=True)
    expiry = fields.Date(allow_none=True)
    serial = fields.String(allow_none=True)
    location_id = fields.Integer()
    quantity = fields.Integer()
    status = fields.Enum(ReservationStatus, by_value=True)
    kit_id = fields.Integer(allow_none=True)
    packed_quantity = fields.Integer(metadata={"description": "Units scanned into its kit"})
    created_at = fields.DateTime()
    released_at = fields.DateTime(allow_none=True)
    release_reason = fields.String(allow_none=True)


ReservationPage = page_schema(ReservationOut, "ReservationPage")


class HorizonArgs(Schema):
    horizon_days = QueryInt(load_default=14, minimum=1, maximum=90)
    site = Text(max_length=32)


class ShortageOut(Schema):
    item_id = fields.Integer()
    demand = fields.Integer(metadata={"description": "Unreserved units needed in the horizon"})
    available = fields.Integer()
    shortfall = fields.Integer()
    first_short_date = fields.Date(allow_none=True)


class ShortageList(Schema):
    items = fields.List(fields.Nested(ShortageOut))


class ReorderOut(Schema):
    item_id = fields.Integer()
    sku = fields.String()
    available = fields.Integer()
    demand = fields.Integer()
    projected_available = fields.Integer()
    reorder_point = fields.Integer()
    reorder_quantity = fields.Integer()
    suggested_quantity = fields.Integer()


class ReorderList(Schema):
    items = fields.List(fields.Nested(ReorderOut))
