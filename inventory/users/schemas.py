from __future__ import annotations

from marshmallow import Schema, fields

from inventory.schemas import Code, Id, PageArgs, StrictBool, Text, page_schema
from inventory.users.models import Role


class UserIn(Schema):
    name = Text(required=True, max_length=120)
    role = fields.Enum(Role, by_value=True, required=True)
    site = Code(max_length=32, allow_none=True)
    vehicle_location_id = Id(
        allow_none=True,
        metadata={"description": "Drivers: the vehicle location dispatched stock rides in"},
    )


class UserPatch(Schema):
    name = Text(max_length=120)
    role = fields.Enum(Role, by_value=True)
    site = Code(max_length=32, allow_none=True)
    vehicle_location_id = Id(allow_none=True)
    active = StrictBool()


class UserOut(Schema):
    id = fields.Integer()
    name = fields.String()
    role = fields.Enum(Role, by_value=True)
    site = fields.String(allow_none=True)
    vehicle_location_id = fields.Integer(allow_none=True)
    active = fields.Boolean()
    created_at = fields.DateTime()


class UserArgs(PageArgs):
    role = fields.Enum(Role, by_value=True)
    active = fields.Boolean()


UserPage = page_schema(UserOut, "UserPage")


class TokenIn(Schema):
    label = Text(max_length=120, allow_none=True, metadata={"example": "packing station 2"})


class TokenOut(Schema):
    id = fields.Integer()
    user_id = fields.Integer()
    label = fields.String(allow_none=True)
    token = fields.String(
        allow_none=True,
        metadata={
            "description": "Shown once; only its hash is stored. Null when the response is an "
            "Idempotency-Key replay, since the secret is never kept."
        },
    )
    created_at = fields.DateTime()
