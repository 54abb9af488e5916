from __future__ import annotations

import numbers
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from inventory.deliveries.models import (
    Condition,
    Disposition,
    FailureReason,
    Outcome,
    RouteStatus,
    StopKind,
    StopStatus,
)
from inventory.kits.models import KitStatus
from inventory.schemas import (
    Id,
    MoneyField,
    PageArgs,
    QueryInt,
    StrictInt,
    Text,
    Timestamp,
    page_schema,
)

# Base64 of a 200 kB PNG is 273,068 characters; a little more is let through so that the size
# check can answer 413 with the real byte count.
MAX_SIGNATURE_TEXT = 300_000

# Degrees as a decimal string, within range: -90 to 90 and -180 to 180.
LATITUDE_PATTERN = r"^-?(90(\.0{1,15})?|[1-8]?[0-9](\.[0-9]{1,15})?)$"
LONGITUDE_PATTERN = r"^-?(180(\.0{1,15})?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]{1,15})?)$"


class Coordinate(fields.Field[Decimal]):
    """Degrees as a JSON number, or as a decimal string (``"30.267153"``) that keeps every
    digit; the spec says both (``oneOf``) and nothing else is taken: no booleans, no exponent
    or padded strings, nothing out of range, no NaN."""

    def __init__(self, *, limit: int, pattern: str, example: str, **kwargs: Any) -> None:
        self._limit = limit
        self._pattern = re.compile(pattern)
        kwargs["metadata"] = {
            "oneOf": [
                {"type": "number", "minimum": -limit, "maximum": limit},
                {"type": "string", "pattern": pattern, "example": example},
            ],
            **kwargs.get("metadata", {}),
        }
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, str) and self._pattern.fullmatch(value):
            return Decimal(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValidationError("Send degrees as a number or a decimal string.")
        try:
            degrees = Decimal(str(value))
        except InvalidOperation:
            raise ValidationError("Send degrees as a number or a decimal string.") from None
        if not degrees.is_finite() or not -self._limit <= degrees <= self._limit:
            raise ValidationError(f"Must be between -{self._limit} and {self._limit}.")
        return degrees


class RouteIn(Schema):
    driver_id = Id(required=True)
    date = fields.Date(required=True)
    kit_ids = fields.List(
        Id(),
        required=True,
        validate=validate.Length(max=200),
        metadata={"description": "Packed kits, in stop order"},
    )
    pickup_kit_ids = fields.List(
        Id(),
        load_default=list,
        validate=validate.Length(max=200),
        metadata={
            "description": "Delivered kits whose equipment and unused goods the driver collects "
            "(stops after the deliveries); the driver records them with POST /kits/{id}/returns"
        },
    )

    @validates_schema
    def has_stops(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("kit_ids") and not data.get("pickup_kit_ids"):
            raise ValidationError("A route needs at least one stop.", "kit_ids")


class RouteArgs(PageArgs):
    date = fields.Date()
    status = fields.Enum(RouteStatus, by_value=True)
    driver_id = QueryInt()
    site = Text(max_length=32)


class RouteSummaryOut(Schema):
    id = fields.Integer()
    site = fields.String()
    driver_id = fields.Integer()
    date = fields.Date()
    status = fields.Enum(RouteStatus, by_value=True)
    vehicle_location_id = fields.Integer(allow_none=True)
    dispatched_at = fields.AwareDateTime(allow_none=True)
    completed_at = fields.AwareDateTime(allow_none=True)
    stop_count = fields.Integer()
    version = fields.Integer()


class StopAddressOut(Schema):
    line1 = fields.String()
    line2 = fields.String(allow_none=True)
    city = fields.String()
    state = fields.String()
    postal_code = fields.String()


class StopItemOut(Schema):
    item_id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    lot = fields.String(allow_none=True)
    serial = fields.String(allow_none=True)
    quantity = fields.Integer()
    unit = fields.String()


class StopOut(Schema):
    sequence = fields.Integer()
    kind = fields.Enum(StopKind, by_value=True)
    kit_id = fields.Integer()
    kit_number = fields.String()
    kit_status = fields.Enum(KitStatus, by_value=True)
    status = fields.Enum(StopStatus, by_value=True)
    address = fields.Nested(StopAddressOut, metadata={"description": "Where to go"})
    items = fields.List(
        fields.Nested(StopItemOut),
        metadata={"description": "To hand over; for a pick-up, what is still at the patient"},
    )


class RouteOut(RouteSummaryOut):
    stops = fields.List(fields.Nested(StopOut))


RoutePage = page_schema(RouteSummaryOut, "RoutePage")


class DeliveryIn(Schema):
    outcome = fields.Enum(Outcome, by_value=True, required=True)
    occurred_at = Timestamp(
        required=True,
        metadata={
            "description": "From the phone (capture may be offline): not more than 5 "
            "minutes ahead, not before the dispatch"
        },
    )
    recipient_name = Text(max_length=120)
    relationship = Text(max_length=60)
    signature = fields.String(
        validate=validate.Length(min=1, max=MAX_SIGNATURE_TEXT),
        metadata={"description": "PNG as base64, at most 200 kB"},
    )
    latitude = Coordinate(limit=90, pattern=LATITUDE_PATTERN, example="30.267153")
    longitude = Coordinate(limit=180, pattern=LONGITUDE_PATTERN, example="-97.743057")
    failure_reason = fields.Enum(FailureReason, by_value=True)
    note = Text(max_length=500, allow_none=True)

    @validates_schema
    def by_outcome(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("outcome") is Outcome.DELIVERED:
            missing = [
                name
                for name in ("recipient_name", "relationship", "signature")
                if data.get(name) is None
            ]
            if missing:
                raise ValidationError({name: ["A delivered outcome needs it."] for name in missing})
            if data.get("failure_reason") is not None:
                raise ValidationError("Only a failed outcome has a reason.", "failure_reason")
        if data.get("outcome") is Outcome.FAILED and data.get("failure_reason") is None:
            raise ValidationError("A failed outcome needs a reason.", "failure_reason")
        if (data.get("latitude") is None) != (data.get("longitude") is None):
            raise ValidationError("Give both latitude and longitude, or neither.", "latitude")
        for name, limit in (("latitude", 90), ("longitude", 180)):
            value = data.get(name)
            if value is not None and not -limit <= value <= limit:
                raise ValidationError(f"Must be between -{limit} and {limit}.", name)


class DeliveryOut(Schema):
    id = fields.Integer()
    kit_id = fields.Integer()
    route_id = fields.Integer()
    driver_id = fields.Integer()
    outcome = fields.Enum(Outcome, by_value=True)
    occurred_at = fields.AwareDateTime()
    recorded_at = fields.AwareDateTime()
    recipient_name = fields.String(allow_none=True)
    relationship = fields.String(allow_none=True)
    has_signature = fields.Boolean()
    # Sent as decimal strings, every stored digit kept (apispec would call them numbers).
    latitude = fields.Decimal(
        as_string=True, allow_none=True, metadata={"type": "string", "format": "decimal"}
    )
    longitude = fields.Decimal(
        as_string=True, allow_none=True, metadata={"type": "string", "format": "decimal"}
    )
    failure_reason = fields.Enum(FailureReason, by_value=True, allow_none=True)
    note = fields.String(allow_none=True)
    reversed = fields.Boolean()
    reversal_reason = fields.String(allow_none=True)


class DeliveryList(Schema):
    items = fields.List(fields.Nested(DeliveryOut))


class ReversalIn(Schema):
    reason = Text(max_length=500, required=True)


class ReturnLineIn(Schema):
    item_id = Id(required=True)
    lot = Text(max_length=20)
    serial = Text(max_length=20)
    quantity = StrictInt(required=True, minimum=1, maximum=100_000)
    condition = fields.Enum(Condition, by_value=True, required=True)


class ReturnIn(Schema):
    lines = fields.List(
        fields.Nested(ReturnLineIn), required=True, validate=validate.Length(min=1, max=200)
    )
    sharps_containers = StrictInt(load_default=0, minimum=0, maximum=100)
    occurred_at = Timestamp()
    note = Text(max_length=500, allow_none=True)


class ReturnLineOut(Schema):
    item_id = fields.Integer()
    lot = fields.String(allow_none=True)
    serial = fields.String(allow_none=True)
    quantity = fields.Integer()
    condition = fields.Enum(Condition, by_value=True)
    disposition = fields.Enum(Disposition, by_value=True)
    unit_cost = MoneyField()
    total_cost = MoneyField()


class ReturnOut(Schema):
    id = fields.Integer()
    kit_id = fields.Integer()
    occurred_at = fields.AwareDateTime()
    recorded_at = fields.AwareDateTime()
    sharps_containers = fields.Integer()
    document_id = fields.Integer()
    credit_value = MoneyField(
        metadata={"description": "Unopened goods back to quarantine, at cost"}
    )
    waste_value = MoneyField(metadata={"description": "Disposed goods, at cost"})
    lines = fields.List(fields.Nested(ReturnLineOut))


class ReturnList(Schema):
    items = fields.List(fields.Nested(ReturnOut))


class DriverOut(Schema):
    id = fields.Integer()
    name = fields.String()
    site = fields.String(allow_none=True)
    active = fields.Boolean()
    vehicle_location_id = fields.Integer(allow_none=True)
    version = fields.Integer()


class DriverArgs(PageArgs):
    site = Text(max_length=32)


DriverPage = page_schema(DriverOut, "DriverPage")


class DriverPatch(Schema):
    vehicle_location_id = Id(required=True)
