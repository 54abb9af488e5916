from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from inventory.finance.costing import GROUP_BY
from inventory.finance.models import MatchOutcome
from inventory.finance.rules import MAX_CLAIM_ROWS, MAX_PERIOD_DAYS
from inventory.schemas import PageArgs, QueryInt, StrictInt, Text

AMOUNT = {"type": "string", "format": "decimal", "example": "1234.56"}
FORMATS = ("json", "csv", "xlsx")


def Amount(description: str | None = None, **kwargs: Any) -> fields.Decimal:  # noqa: N802
    """Money in cents as a decimal string, e.g. ``"1234.56"``."""
    metadata = {**AMOUNT, "description": description} if description else AMOUNT
    return fields.Decimal(as_string=True, metadata=metadata, **kwargs)


class PeriodArgs(Schema):
    from_ = fields.Date(data_key="from", required=True, metadata={"description": "first day"})
    to = fields.Date(required=True, metadata={"description": "last day (inclusive)"})
    site = Text(max_length=32)
    format = fields.String(
        validate=validate.OneOf(FORMATS),
        metadata={"description": "json, csv or xlsx: the same as the Accept header, for links"},
    )

    @validates_schema
    def bounded(self, data: dict[str, Any], **kwargs: Any) -> None:
        first, last = data.get("from_"), data.get("to")
        if first and last and first > last:
            raise ValidationError("Must not be before 'from'.", "to")
        if first and last and (last - first).days + 1 > MAX_PERIOD_DAYS:
            raise ValidationError(f"A report covers at most {MAX_PERIOD_DAYS} days.", "to")


class ReportArgs(PeriodArgs):
    group_by = fields.String(
        load_default="patient", validate=validate.OneOf(GROUP_BY), metadata={"example": "payer"}
    )


class DayArgs(PeriodArgs, PageArgs):
    patient_id = QueryInt()
    format = fields.String(
        validate=validate.OneOf(("json", "csv")),
        metadata={"description": "json or csv: the same as the Accept header, for links"},
    )


class FiguresOut(Schema):
    per_diem_units = fields.Integer(metadata={"description": "counted by the payer's rule"})
    supply_cost = Amount("supplies delivered for the days")
    return_credit = Amount("unopened goods restocked")
    waste_cost = Amount("of the supply cost, what came back to be disposed")
    equipment_cost = Amount("daily rate x days at home")
    total_cost = Amount("supply_cost - return_credit + equipment_cost")
    cost_per_unit = Amount("null: no units", allow_none=True)
    expected_revenue = Amount("units x rate x modifier")
    margin = Amount("expected_revenue - total_cost")


class ReportRowOut(FiguresOut):
    patient_id = fields.Integer()
    external_ref = fields.String()
    therapy_id = fields.Integer()
    hcpcs = fields.String()
    modifier = fields.String(allow_none=True)
    payer_id = fields.Integer()
    payer_name = fields.String()


class ReportOut(Schema):
    from_ = fields.Date(data_key="from")
    to = fields.Date()
    site = fields.String(allow_none=True)
    group_by = fields.String()
    closed_months = fields.List(
        fields.String(), metadata={"description": "months read from their close-time snapshot"}
    )
    rows = fields.List(fields.Nested(ReportRowOut))
    totals = fields.Nested(FiguresOut)


class DayOut(FiguresOut):
    day = fields.Date()
    patient_id = fields.Integer()
    external_ref = fields.String()
    therapy_id = fields.Integer()
    hcpcs = fields.String()
    modifier = fields.String(allow_none=True)
    payer_id = fields.Integer()
    payer_name = fields.String()
    site = fields.String()
    kit_ids = fields.List(fields.Integer(), metadata={"description": "the kits behind the costs"})
    rate = fields.String(allow_none=True, metadata={"description": "the rate in force that day"})


class DayPage(Schema):
    items = fields.List(fields.Nested(DayOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class PeriodOut(Schema):
    month = fields.String(metadata={"example": "2026-10"})
    first_day = fields.Date()
    last_day = fields.Date()
    closed_at = fields.DateTime()
    closed_by = fields.Integer()
    note = fields.String(allow_none=True)
    rows = fields.Integer(metadata={"description": "drill-down rows kept from the close"})


class PeriodList(Schema):
    items = fields.List(fields.Nested(PeriodOut), required=True)


class CloseIn(Schema):
    note = Text(max_length=500, allow_none=True)


class ClaimIn(Schema):
    external_ref = Text(max_length=64, required=True)
    hcpcs = Text(max_length=5, required=True, validate=validate.Regexp(r"^[A-Z0-9]{5}$"))
    date_of_service = fields.Date(required=True)
    units = StrictInt(minimum=0, maximum=100_000, required=True)
    billed_amount = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9]{1,12}(\.[0-9]{1,2})?$", error='e.g. "1234.56"'),
        metadata=AMOUNT,
    )


class ReconciliationIn(Schema):
    claims = fields.List(
        fields.Nested(ClaimIn), validate=validate.Length(max=MAX_CLAIM_ROWS), load_default=None
    )
    from_ = fields.Date(data_key="from", metadata={"description": "default: first claim's date"})
    to = fields.Date(metadata={"description": "default: last claim's date"})
    site = Text(max_length=32)


class MatchOut(Schema):
    outcome = fields.String(metadata={"enum": [outcome.value for outcome in MatchOutcome]})
    external_ref = fields.String()
    hcpcs = fields.String()
    date_of_service = fields.Date()
    billed_units = fields.Integer()
    delivered_units = fields.Integer()
    billed_amount = Amount()
    expected_revenue = Amount()
    amount_difference = Amount("billed - expected")
    claim_lines = fields.List(fields.Integer(), metadata={"description": "CSV lines / indexes"})


class ReconciliationOut(Schema):
    id = fields.Integer()
    from_ = fields.Date(data_key="from")
    to = fields.Date()
    site = fields.String(allow_none=True)
    source = fields.String(metadata={"description": "csv or json"})
    claim_lines = fields.Integer()
    created_at = fields.DateTime()
    created_by = fields.Integer()
    matched = fields.Integer(metadata={"description": "how many claims matched"})
    matched_lines = fields.List(fields.Nested(MatchOut))
    billed_not_delivered = fields.List(fields.Nested(MatchOut))
    delivered_not_billed = fields.List(fields.Nested(MatchOut))
    unit_mismatches = fields.List(fields.Nested(MatchOut))


class ReconciliationArgs(Schema):
    format = fields.String(validate=validate.OneOf(("json", "csv")))
