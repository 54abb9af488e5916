from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from inventory.care.rules import MAX_DATES, MAX_EVERY_DAYS, WEEKDAYS
from inventory.schemas import Id, PageArgs, QueryInt, StrictInt, Text, page_schema
from inventory.therapies.models import InfusionDayStatus, TherapyStatus

HCPCS = validate.Regexp(r"^[A-Z][0-9]{4}$", error="An HCPCS code such as S9357.")


class ScheduleIn(Schema):
    every_days = StrictInt(minimum=1, maximum=MAX_EVERY_DAYS, metadata={"example": 14})
    weekdays = fields.List(
        fields.String(validate=validate.OneOf(WEEKDAYS)),
        validate=validate.Length(min=1, max=7),
        metadata={"example": ["mon", "thu"]},
    )
    dates = fields.List(fields.Date(), validate=validate.Length(min=1, max=MAX_DATES))

    @validates_schema
    def exactly_one_rule(self, data: dict[str, Any], **kwargs: Any) -> None:
        if sum(1 for key in ("every_days", "weekdays", "dates") if key in data) != 1:
            raise ValidationError("Give exactly one of every_days, weekdays or dates.")

    @post_load
    def as_json(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "dates" in data:
            return {"dates": [d.isoformat() for d in data["dates"]]}
        return data


class TherapyIn(Schema):
    patient_id = Id(required=True)
    template_id = Id(required=True)
    hcpcs = fields.String(required=True, validate=HCPCS)
    modifier = fields.String(
        allow_none=True,
        validate=validate.Regexp(r"^[A-Z0-9]{2}$", error="A two-character modifier such as SH."),
    )
    drug = Text(max_length=200, allow_none=True, metadata={"example": "imiglucerase"})
    start_date = fields.Date(required=True)
    end_date = fields.Date(allow_none=True)
    schedule = fields.Nested(ScheduleIn, required=True)
    note = Text(max_length=2000, min_length=0, allow_none=True)

    @validates_schema
    def ends_after_start(self, data: dict[str, Any], **kwargs: Any) -> None:
        end, start = data.get("end_date"), data.get("start_date")
        if end is not None and start is not None and end < start:
            raise ValidationError("Must not be before start_date.", "end_date")


class TherapyOut(Schema):
    id = fields.Integer()
    patient_id = fields.Integer()
    template_id = fields.Integer()
    site = fields.String()
    hcpcs = fields.String()
    modifier = fields.String(allow_none=True)
    drug = fields.String(allow_none=True)
    start_date = fields.Date()
    end_date = fields.Date(allow_none=True)
    schedule = fields.Dict()
    status = fields.Enum(TherapyStatus, by_value=True)
    scheduled_through = fields.Date()
    discontinued_on = fields.Date(allow_none=True)
    equipment_pickup_due = fields.Date(allow_none=True)
    note = fields.String(allow_none=True)


class TherapyArgs(PageArgs):
    patient_id = QueryInt()
    status = fields.Enum(TherapyStatus, by_value=True)
    site = Text(max_length=32)


TherapyPage = page_schema(TherapyOut, "TherapyPage")


class MissingOut(Schema):
    item_id = fields.Integer()
    missing = fields.Integer()


class InfusionDayOut(Schema):
    id = fields.Integer()
    therapy_id = fields.Integer()
    patient_id = fields.Integer()
    date = fields.Date()
    status = fields.Enum(InfusionDayStatus, by_value=True)
    kit_id = fields.Integer(allow_none=True)
    missing = fields.List(
        fields.Nested(MissingOut),
        metadata={"description": "What a short day still lacks, per item"},
    )


class InfusionDayArgs(PageArgs):
    status = fields.Enum(InfusionDayStatus, by_value=True)


InfusionDayPage = page_schema(InfusionDayOut, "InfusionDayPage")


class InfusionDayPatch(Schema):
    date = fields.Date(metadata={"description": "Move the day (not into the past)"})
    status = fields.String(
        validate=validate.OneOf([InfusionDayStatus.CANCELLED.value]),
        metadata={"description": "Only 'cancelled'"},
    )

    @validates_schema
    def one_change(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("date" in data) == ("status" in data):
            raise ValidationError("Give either date (to move the day) or status: cancelled.")


class DiscontinueIn(Schema):
    end_date = fields.Date(required=True, metadata={"description": "The last day of therapy"})
    note = Text(max_length=2000, min_length=0, allow_none=True)
