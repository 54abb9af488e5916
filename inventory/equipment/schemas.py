from __future__ import annotations

from marshmallow import Schema, fields

from inventory.kits.models import KitStatus
from inventory.ledger.models import EquipmentStatus
from inventory.schemas import PageArgs, QueryInt, Text, page_schema


class EquipmentOut(Schema):
    id = fields.Integer()
    serial = fields.String()
    item_id = fields.Integer()
    sku = fields.String()
    status = fields.Enum(EquipmentStatus, by_value=True)
    patient_id = fields.Integer(allow_none=True)
    location_id = fields.Integer(allow_none=True)
    pm_due = fields.Date(allow_none=True)
    pm_overdue = fields.Boolean(metadata={"description": "Cannot be reserved or packed"})
    allowed_transitions = fields.List(fields.Enum(EquipmentStatus, by_value=True))
    version = fields.Integer()


class EquipmentArgs(PageArgs):
    status = fields.Enum(EquipmentStatus, by_value=True)
    item_id = QueryInt()
    patient_id = QueryInt()
    location_id = QueryInt()
    site = Text(max_length=32)
    pm_due_before = fields.Date()


EquipmentPage = page_schema(EquipmentOut, "EquipmentPage")


class TransitionIn(Schema):
    to = fields.Enum(EquipmentStatus, by_value=True, required=True)
    note = Text(max_length=500, allow_none=True)
    pm_due = fields.Date(allow_none=True, metadata={"description": "Next preventive maintenance"})


class PatientPeriodOut(Schema):
    patient_id = fields.Integer()
    from_ = fields.Date(data_key="from")
    to = fields.Date(allow_none=True, metadata={"description": "null: still at the patient"})


class UnitKitOut(Schema):
    kit_id = fields.Integer()
    number = fields.String()
    patient_id = fields.Integer()
    status = fields.Enum(KitStatus, by_value=True)
    first_day = fields.Date()
    last_day = fields.Date()
    in_kit = fields.Boolean(metadata={"description": "false once swapped out or cancelled"})


class EquipmentEventOut(Schema):
    id = fields.Integer()
    from_status = fields.Enum(EquipmentStatus, by_value=True)
    to_status = fields.Enum(EquipmentStatus, by_value=True)
    patient_id = fields.Integer(allow_none=True)
    kit_id = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    occurred_at = fields.AwareDateTime()
    actor_id = fields.Integer()


class EquipmentHistoryOut(Schema):
    unit = fields.Nested(EquipmentOut)
    patients = fields.List(fields.Nested(PatientPeriodOut))
    kits = fields.List(fields.Nested(UnitKitOut))
    events = fields.List(fields.Nested(EquipmentEventOut))
