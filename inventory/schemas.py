"""Shared marshmallow fields and list paging. Every input is bounded, so no input reaches the
database in a form it would refuse with an error of its own."""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import BigInteger, Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from inventory.errors import InvalidInput

MAX_INT = 2**31 - 1
MAX_QUANTITY = 1_000_000
MONEY_PATTERN = re.compile(r"[0-9]{1,8}(\.[0-9]{1,4})?")

T = TypeVar("T")


class StrictInt(fields.Integer):
    """A JSON integer: no strings, no floats, no booleans, and within a 32-bit range."""

    def __init__(self, *, minimum: int = 0, maximum: int = MAX_INT, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Range(min=minimum, max=maximum))
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or (
            not isinstance(value, numbers.Integral) and not isinstance(value, str)
        ):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBool(fields.Boolean):
    """A JSON boolean: true or false, not 0, 1, "yes" or "true" (marshmallow's Boolean takes
    those; the spec says boolean)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


class QueryInt(fields.Integer):
    """An integer from the query string, within a 32-bit range."""

    def __init__(self, *, minimum: int = 1, maximum: int = MAX_INT, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Range(min=minimum, max=maximum))
        super().__init__(**kwargs)


def Id(**kwargs: Any) -> StrictInt:  # noqa: N802 - reads as a field type
    return StrictInt(minimum=1, **kwargs)


def Quantity(**kwargs: Any) -> StrictInt:  # noqa: N802
    return StrictInt(minimum=1, maximum=MAX_QUANTITY, **kwargs)


# What Text refuses: C0 control characters other than tab, newline and carriage return; DEL.
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
TEXT_PATTERN = rf"^[^{_CONTROL}]*$"
# ...and, when it may not be empty, a value that is all whitespace (\s is what strip() removes).
NON_BLANK_TEXT_PATTERN = rf"^[^{_CONTROL}]*[^{_CONTROL}\s][^{_CONTROL}]*$"


class Text(fields.String):
    """A bounded string without NUL or other control characters (except tab/newline), stripped
    of surrounding whitespace once accepted.

    The spec says all of it: maxLength bounds the string as sent, and, unless a regex validator
    already restricts the characters (a Code, an HCPCS code), a pattern states the characters
    refused and, when the field may not be empty, that it is not all whitespace. A regex
    validator is applied to the string as sent as well, so " AB1" is refused as the spec's
    pattern says, not accepted as "AB1".
    """

    def __init__(self, *, max_length: int, min_length: int = 1, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Length(min=min_length, max=max_length))
        validators = kwargs["validate"]
        validators = validators if isinstance(validators, list | tuple) else [validators]
        self._max_length = max_length
        self._regexps = [v for v in validators if isinstance(v, validate.Regexp)]
        if not self._regexps:
            pattern = NON_BLANK_TEXT_PATTERN if min_length >= 1 else TEXT_PATTERN
            kwargs["metadata"] = {"pattern": pattern, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text) or "\x7f" in text:
            raise ValidationError("Control characters are not allowed.")
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
            raise ValidationError("Not valid Unicode text.")
        if len(text) > self._max_length:
            raise ValidationError(f"Longer than maximum length {self._max_length}.")
        for regexp in self._regexps:
            regexp(text)
        return text.strip()


class Code(Text):
    """An identifier people type and scan: letters, digits and - _ . / only."""

    def __init__(self, *, max_length: int, **kwargs: Any) -> None:
        super().__init__(
            max_length=max_length,
            validate=[
                validate.Length(min=1, max=max_length),
                validate.Regexp(
                    r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", error="Use letters, digits, . _ / -"
                ),
            ],
            **kwargs,
        )


class MoneyField(fields.Field[Decimal]):
    """Money as a decimal string such as ``"12.5000"``; floats are refused."""

    def __init__(self, **kwargs: Any) -> None:
        # Merged, not defaulted: a field's own description must not drop its type and pattern.
        kwargs["metadata"] = {
            "type": "string",
            "format": "decimal",
            "pattern": r"^[0-9]{1,8}(\.[0-9]{1,4})?$",
            "example": "12.5000",
            **kwargs.get("metadata", {}),
        }
        super().__init__(**kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return f"{Decimal(value).quantize(Decimal('0.0001'))}"

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if not isinstance(value, str) or not MONEY_PATTERN.fullmatch(value):
            raise ValidationError(
                'Send money as a decimal string with up to 8 digits and 4 decimals, e.g. "12.5000".'
            )
        return Decimal(value)


class Timestamp(fields.AwareDateTime):
    """An ISO 8601 timestamp with an offset, that has a UTC form (it is stored in UTC)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Out of range.") from None
        return moment


class ProblemSchema(Schema):
    """RFC 9457 problem details, which may carry extension members (RFC 9457 section 3.2), such
    as a conflict's ``missing`` lines: ``additionalProperties: true`` in the spec. (A Meta
    description would make apispec drop additionalProperties, so the API description says it.)"""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Validation messages by field path, e.g. lines.0.quantity"},
    )
    request_id = fields.String()


class PageArgs(Schema):
    limit = QueryInt(load_default=50, maximum=500, metadata={"description": "1 to 500"})
    cursor = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[0-9]{1,18}$", error="Not a cursor this service issued."),
        metadata={"description": "next_cursor from the previous page (opaque)"},
    )


def page_schema(item_schema: type[Schema], name: str) -> type[Schema]:
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": fields.String(allow_none=True, required=True),
        },
        name=name,
    )


def encode_cursor(last_id: int) -> str:
    return str(last_id)


def decode_cursor(cursor: str | None) -> int | None:
    """Cursors are the last id seen; the schema's pattern already refused anything else."""
    if not cursor:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidInput.field("cursor", "is not a cursor this service issued")
    return int(cursor)


def paginate(
    session: Session,
    query: Select[Any],
    id_column: InstrumentedAttribute[int],
    args: Mapping[str, Any],
) -> dict[str, Any]:
    """Keyset paging on the id: stable under concurrent inserts, no OFFSET scans."""
    limit = int(args["limit"])
    after = decode_cursor(args.get("cursor"))
    if after is not None and after >= MAX_INT and not isinstance(id_column.type, BigInteger):
        return {"items": [], "next_cursor": None}  # past any id such a table can hold
    if after is not None:
        query = query.where(id_column > after)
    rows: Sequence[Any] = session.scalars(query.order_by(id_column).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": rows,
        "next_cursor": encode_cursor(rows[-1].id) if more and rows else None,
    }
