"""Users and their tokens. A token is shown once, at creation, and stored as a hash."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.auth import hash_token, new_token
from inventory.catalog.models import Location, LocationKind
from inventory.db import utcnow
from inventory.errors import Conflict, InvalidInput, NotFound
from inventory.schemas import paginate
from inventory.users.models import ApiToken, Role, User


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str

    def view(self) -> dict[str, Any]:
        return {
            "id": self.token.id,
            "user_id": self.token.user_id,
            "label": self.token.label,
            "token": self.secret,
            "created_at": self.token.created_at,
        }


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}.")
    return user


def _check_vehicle(session: Session, location_id: int | None, role: Role) -> None:
    if location_id is None:
        return
    if role is not Role.DRIVER:
        raise InvalidInput.field("vehicle_location_id", "only drivers have a vehicle")
    location = session.get(Location, location_id)
    if location is None or location.kind is not LocationKind.VEHICLE:
        raise InvalidInput.field("vehicle_location_id", f"location {location_id} is not a vehicle")


def create_user(session: Session, fields: dict[str, Any]) -> User:
    """Add a user with a role. A driver with a site but no vehicle given gets a vehicle
    location of their own, so what is dispatched to them always has a place in the ledger."""
    _check_vehicle(session, fields.get("vehicle_location_id"), fields["role"])
    user = User(**fields)
    session.add(user)
    session.flush()
    if user.role is Role.DRIVER and user.vehicle_location_id is None and user.site is not None:
        code = f"VEHICLE-USER-{user.id}"
        taken = set(
            session.scalars(select(Location.code).where(Location.code.startswith(code))).all()
        )
        suffix = 1
        while code in taken:  # someone named a location like that already
            suffix += 1
            code = f"VEHICLE-USER-{user.id}-{suffix}"
        vehicle = Location(
            code=code,
            name=f"Vehicle of driver {user.id}",
            kind=LocationKind.VEHICLE,
            site=user.site,
        )
        session.add(vehicle)
        session.flush()
        user.vehicle_location_id = vehicle.id
        session.flush()
    return user


def update_user(session: Session, user: User, changes: dict[str, Any]) -> User:
    _check_vehicle(
        session,
        changes.get("vehicle_location_id", user.vehicle_location_id),
        changes.get("role", user.role),
    )
    for name, value in changes.items():
        setattr(user, name, value)
    session.flush()
    return user


def list_users(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    query = select(User)
    for name in ("role", "active"):
        if args.get(name) is not None:
            query = query.where(getattr(User, name) == args[name])
    return paginate(session, query, User.id, args)


def issue_token(session: Session, user: User, label: str | None = None) -> IssuedToken:
    """Create a bearer token for ``user``; the secret is returned once and never stored."""
    if not user.active:
        raise Conflict(f"User {user.id} is deactivated; reactivate them first.")
    secret = new_token()
    token = ApiToken(user_id=user.id, token_hash=hash_token(secret), label=label)
    session.add(token)
    session.flush()
    return IssuedToken(token, secret)


def revoke_token(session: Session, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"No token {token_id}.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
