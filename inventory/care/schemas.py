"""Payers and their fee schedules, patients and kit templates: request and response shapes.

Every input is bounded. Validation messages never quote the value sent for a patient field,
so a patient's name, address or phone cannot leak into an error body through them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_dump, validate, validates_schema

from inventory.care.models import DEFAULT_MODIFIER_MULTIPLIERS, Counting, Patient
from inventory.schemas import Code, Id, MoneyField, PageArgs, QueryInt, StrictInt, Text, page_schema

HCPCS_PATTERN = r"^[A-Z][0-9]{4}$"
MODIFIER_PATTERN = r"^[A-Z0-9]{2}$"
MULTIPLIER_PATTERN = r"^(0(\.[0-9]{1,4})?|1(\.0{1,4})?)$"
STATE_PATTERN = r"^[A-Z]{2}$"
POSTAL_CODE_PATTERN = r"^[0-9]{5}(-[0-9]{4})?$"
PHONE_PATTERN = r"^[0-9+()\- .]{7,32}$"

MAX_RATES = 500
MAX_MODIFIERS = 20
MAX_TEMPLATE_LINES = 100
MAX_TEMPLATE_EQUIPMENT = 10
MAX_QUANTITY_PER_DAY = 1000
MAX_EQUIPMENT_QUANTITY = 10


def Hcpcs(**kwargs: Any) -> Text:  # noqa: N802 - reads as a field type
    """An HCPCS Level II code such as S9357."""
    kwargs["metadata"] = {"example": "S9357", **kwargs.get("metadata", {})}
    return Text(
        max_length=5,
        validate=[
            validate.Length(min=5, max=5),
            validate.Regexp(HCPCS_PATTERN, error="An HCPCS code such as S9357."),
        ],
        **kwargs,
    )


class Multiplier(fields.Field[str]):
    """A share of the rate, 0 to 1, as a decimal string with up to 4 places (``"0.5000"``)."""

    _pattern = re.compile(MULTIPLIER_PATTERN)

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {
            "type": "string",
            "format": "decimal",
            "pattern": MULTIPLIER_PATTERN,
            "example": "0.5000",
            **kwargs.get("metadata", {}),
        }
        super().__init__(**kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return f"{Decimal(value):.4f}"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or not self._pattern.fullmatch(value):
            raise ValidationError('A decimal string from "0" to "1" with up to 4 places.')
        return f"{Decimal(value):.4f}"


def _few_modifiers(value: dict[str, Any]) -> None:
    if len(value) > MAX_MODIFIERS:
        raise ValidationError(f"At most {MAX_MODIFIERS} modifiers.")


def ModifierMultipliers(**kwargs: Any) -> fields.Dict:  # noqa: N802
    metadata = {
        "description": "HCPCS modifier (two capitals or digits) → share of the rate paid, e.g. "
        "SH (second concurrent therapy) 0.5000, SJ (third or more) 0.0000. Defaults to "
        "SH 0.5000, SJ 0.0000.",
        "maxProperties": MAX_MODIFIERS,
        "example": DEFAULT_MODIFIER_MULTIPLIERS,
        **kwargs.pop("metadata", {}),
    }
    return fields.Dict(
        keys=Text(
            max_length=2,
            validate=[
                validate.Length(min=2, max=2),
                validate.Regexp(MODIFIER_PATTERN, error="A two-character modifier such as SH."),
            ],
        ),
        values=Multiplier(),
        validate=_few_modifiers,
        metadata=metadata,
        **kwargs,
    )


class RateIn(Schema):
    hcpcs = Hcpcs(required=True)
    rate = MoneyField(required=True)
    counting = fields.Enum(
        Counting,
        by_value=True,
        required=True,
        metadata={"description": "dose_day: a unit per infusion given; calendar_day: per day"},
    )
    effective_from = fields.Date(required=True, metadata={"example": "2026-01-01"})


def _rates_are_distinct(rates: Iterable[dict[str, Any]] | None) -> None:
    seen: dict[tuple[Any, Any], int] = {}
    errors: dict[int, dict[str, list[str]]] = {}
    for index, rate in enumerate(rates or ()):
        key = (rate.get("hcpcs"), rate.get("effective_from"))
        if None in key:
            continue
        if key in seen:
            errors[index] = {
                "effective_from": [
                    f"rates.{seen[key]} already gives {key[0]} from {key[1].isoformat()}."
                ]
            }
        else:
            seen[key] = index
    if errors:
        raise ValidationError({"rates": errors})


def Rates(**kwargs: Any) -> fields.List[Any]:  # noqa: N802
    return fields.List(fields.Nested(RateIn), validate=validate.Length(max=MAX_RATES), **kwargs)


class PayerIn(Schema):
    name = Text(required=True, max_length=120, metadata={"example": "Blue Cross Texas"})
    rates = Rates(
        load_default=list,
        metadata={"description": "The fee schedule; one rate per (hcpcs, effective_from)"},
    )
    modifier_multipliers = ModifierMultipliers()

    @validates_schema
    def distinct_rates(self, data: dict[str, Any], **kwargs: Any) -> None:
        _rates_are_distinct(data.get("rates"))


class PayerPatch(Schema):
    name = Text(max_length=120)
    rates = Rates(
        metadata={
            "description": "Upserted by (hcpcs, effective_from): a rate already there gets the "
            "new rate and counting, a new one is added, none is deleted"
        }
    )
    modifier_multipliers = ModifierMultipliers(
        metadata={"description": 'Replaces the whole modifier map, e.g. {"SH": "0.5000"}'}
    )

    @validates_schema
    def distinct_rates(self, data: dict[str, Any], **kwargs: Any) -> None:
        _rates_are_distinct(data.get("rates"))


class RateOut(Schema):
    hcpcs = fields.String()
    rate = MoneyField()
    counting = fields.Enum(Counting, by_value=True)
    effective_from = fields.Date()


class PayerOut(Schema):
    id = fields.Integer()
    name = fields.String()
    modifier_multipliers = fields.Dict(keys=fields.String(), values=fields.String())
    rates = fields.List(
        fields.Nested(RateOut), metadata={"description": "Sorted by hcpcs, then effective_from"}
    )
    created_at = fields.DateTime()


class PayerArgs(PageArgs):
    name = Text(max_length=120)


PayerPage = page_schema(PayerOut, "PayerPage")


class RateInForceArgs(Schema):
    hcpcs = Hcpcs(required=True)
    date = fields.Date(required=True, metadata={"description": "The day of service"})


class AddressIn(Schema):
    line1 = Text(max_length=200, required=True)
    line2 = Text(max_length=200, min_length=0, allow_none=True)
    city = Text(max_length=100, required=True)
    state = Text(
        required=True,
        max_length=2,
        validate=[
            validate.Length(min=2, max=2),
            validate.Regexp(STATE_PATTERN, error="Two uppercase letters, e.g. TX."),
        ],
    )
    postal_code = Text(
        required=True,
        max_length=10,
        validate=[
            validate.Length(min=5, max=10),
            validate.Regexp(POSTAL_CODE_PATTERN, error="A ZIP code: 12345 or 12345-6789."),
        ],
    )


def Phone(**kwargs: Any) -> Text:  # noqa: N802
    return Text(
        max_length=32,
        validate=[
            validate.Length(min=7, max=32),
            validate.Regexp(PHONE_PATTERN, error="Digits, spaces and + ( ) - . only; 7 to 32."),
        ],
        **kwargs,
    )


class PatientIn(Schema):
    external_ref = Code(
        required=True,
        max_length=64,
        metadata={"description": "The pharmacy system's reference (MRN); unique"},
    )
    name = Text(required=True, max_length=200)
    address = fields.Nested(AddressIn, required=True)
    phone = Phone(allow_none=True)
    payer_id = Id(required=True)
    site = Code(required=True, max_length=32)


class PatientPatch(Schema):
    external_ref = Code(max_length=64)
    name = Text(max_length=200)
    address = fields.Nested(
        AddressIn, metadata={"description": "Replaces the whole address (omit line2 to clear it)"}
    )
    phone = Phone(allow_none=True)
    payer_id = Id()
    site = Code(
        max_length=32,
        metadata={"description": "Cannot change once the patient has a therapy (409)"},
    )


class AddressOut(Schema):
    line1 = fields.String()
    line2 = fields.String(allow_none=True)
    city = fields.String()
    state = fields.String()
    postal_code = fields.String()


class PatientOut(Schema):
    id = fields.Integer()
    external_ref = fields.String()
    name = fields.String()
    address = fields.Nested(AddressOut)
    phone = fields.String(allow_none=True)
    payer_id = fields.Integer()
    site = fields.String()
    created_at = fields.DateTime()

    @pre_dump
    def nest_address(self, patient: Patient | dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if isinstance(patient, dict):
            return patient
        return {
            "id": patient.id,
            "external_ref": patient.external_ref,
            "name": patient.name,
            "address": {
                "line1": patient.address_line1,
                "line2": patient.address_line2,
                "city": patient.city,
                "state": patient.state,
                "postal_code": patient.postal_code,
            },
            "phone": patient.phone,
            "payer_id": patient.payer_id,
            "site": patient.site,
            "created_at": patient.created_at,
        }


class PatientArgs(PageArgs):
    site = Text(max_length=32)
    payer_id = QueryInt()
    external_ref = Text(max_length=64)


PatientPage = page_schema(PatientOut, "PatientPage")


class TemplateLineIn(Schema):
    item_id = Id(required=True)
    quantity_per_day = StrictInt(
        required=True,
        minimum=1,
        maximum=MAX_QUANTITY_PER_DAY,
        metadata={"description": "Units per infusion day"},
    )


class TemplateEquipmentIn(Schema):
    item_id = Id(required=True, metadata={"description": "A pump or pole item"})
    quantity = StrictInt(
        required=True,
        minimum=1,
        maximum=MAX_EQUIPMENT_QUANTITY,
        metadata={"description": "Units per course of therapy"},
    )


class KitTemplateIn(Schema):
    name = Text(required=True, max_length=120, metadata={"example": "Enzyme replacement, port"})
    hcpcs = Hcpcs(required=True)
    lines = fields.List(
        fields.Nested(TemplateLineIn),
        required=True,
        validate=validate.Length(min=1, max=MAX_TEMPLATE_LINES),
        metadata={"description": "Supplies per infusion day (not pumps or poles)"},
    )
    equipment = fields.List(
        fields.Nested(TemplateEquipmentIn),
        load_default=list,
        validate=validate.Length(max=MAX_TEMPLATE_EQUIPMENT),
        metadata={"description": "Pumps and poles per course"},
    )


class TemplateLineOut(Schema):
    item_id = fields.Integer()
    sku = fields.String(attribute="item.sku")
    quantity_per_day = fields.Integer()


class TemplateEquipmentOut(Schema):
    item_id = fields.Integer()
    sku = fields.String(attribute="item.sku")
    quantity = fields.Integer()


class KitTemplateOut(Schema):
    id = fields.Integer()
    name = fields.String()
    hcpcs = fields.String()
    lines = fields.List(fields.Nested(TemplateLineOut))
    equipment = fields.List(fields.Nested(TemplateEquipmentOut))
    created_at = fields.DateTime()


class KitTemplateArgs(PageArgs):
    hcpcs = Hcpcs()
    name = Text(max_length=120)


KitTemplatePage = page_schema(KitTemplateOut, "KitTemplatePage")
