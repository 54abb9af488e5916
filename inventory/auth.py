"""Bearer tokens and roles. Every ``/api/v1`` operation declares who may call it."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request
from sqlalchemy import Table, bindparam, select

from inventory.db import execute_plain
from inventory.errors import Forbidden, Unauthorized
from inventory.users.models import ApiToken, Role, User

TOKEN_PREFIX = "inv_"  # noqa: S105 - a label, not a secret
TOKEN_BYTES = 32

F = TypeVar("F", bound=Callable[..., Any])

ALL_ROLES = tuple(Role)
ADMIN = (Role.ADMIN,)
# Named after the rows of the role table in API.md.
CATALOG_WRITERS = (Role.ADMIN, Role.WAREHOUSE)
STOCK_READERS = (Role.ADMIN, Role.COORDINATOR, Role.WAREHOUSE, Role.FINANCE)
STOCK_WRITERS = (Role.ADMIN, Role.WAREHOUSE)
CARE_READERS = (Role.ADMIN, Role.COORDINATOR, Role.WAREHOUSE, Role.FINANCE)
CARE_WRITERS = (Role.ADMIN, Role.COORDINATOR)
PLANNING_READERS = (Role.ADMIN, Role.COORDINATOR, Role.WAREHOUSE, Role.FINANCE)
PLANNING_WRITERS = (Role.ADMIN, Role.COORDINATOR, Role.WAREHOUSE)
KIT_WORKERS = (Role.ADMIN, Role.WAREHOUSE)
RECALLERS = (Role.ADMIN, Role.COORDINATOR, Role.WAREHOUSE)
TRACE_READERS = (Role.ADMIN, Role.COORDINATOR, Role.WAREHOUSE, Role.FINANCE)
ROUTE_READERS = (Role.ADMIN, Role.WAREHOUSE, Role.DRIVER)  # a driver: their own only
DELIVERERS = (Role.ADMIN, Role.DRIVER)
FINANCE_USERS = (Role.ADMIN, Role.FINANCE)  # reports, reconciliations, periods


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    user_id: int
    name: str
    role: Role
    site: str | None
    vehicle_location_id: int | None


# Every authenticated request runs this: built once, it only binds the token's hash. Plain
# table columns, run on the session's connection: no ORM execution for a row of five values.
_USERS, _TOKENS = cast(Table, User.__table__), cast(Table, ApiToken.__table__)
_CALLER = (
    select(_USERS.c.id, _USERS.c.name, _USERS.c.role, _USERS.c.site, _USERS.c.vehicle_location_id)
    .join(_TOKENS, _TOKENS.c.user_id == _USERS.c.id)
    .where(
        _TOKENS.c.token_hash == bindparam("token_hash"),
        _TOKENS.c.revoked_at.is_(None),
        _USERS.c.active.is_(True),
    )
)


def _authenticate() -> Caller:
    from inventory.web import session  # late: web imports this module

    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <token>'.")
    row = execute_plain(session(), _CALLER, {"token_hash": hash_token(token.strip())}).first()
    if row is None:
        raise Unauthorized("The token is unknown, revoked, or belongs to a deactivated user.")
    return Caller(*row)


def current_caller() -> Caller:
    caller = g.get("caller")
    if caller is None:
        caller = _authenticate()
        g.caller = caller
    return cast(Caller, caller)


def requires(*roles: Role) -> Callable[[F], F]:
    """Authenticate the caller (401) and admit only ``roles`` (403); documents both."""
    allowed = frozenset(roles)

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caller = current_caller()
            if caller.role not in allowed:
                raise Forbidden(f"The {caller.role.value} role may not call this operation.")
            return view(*args, **kwargs)

        apidoc = deepcopy(getattr(view, "_apidoc", {}))
        manual = apidoc.setdefault("manual_doc", {})
        manual["security"] = [{"bearerAuth": []}]
        manual["x-roles"] = [role.value for role in Role if role in allowed]
        manual.setdefault("responses", {}).update({"401": "UNAUTHORIZED", "403": "FORBIDDEN"})
        wrapper._apidoc = apidoc  # type: ignore[attr-defined]
        wrapper.allowed_roles = allowed  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorator
