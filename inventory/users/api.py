"""Users, tokens and the caller's own identity."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from inventory.auth import ADMIN, ALL_ROLES, current_caller, requires
from inventory.blueprint import ID, Blueprint
from inventory.users import service
from inventory.users.models import User
from inventory.users.schemas import (
    TokenIn,
    TokenOut,
    UserArgs,
    UserIn,
    UserOut,
    UserPage,
    UserPatch,
)
from inventory.web import (
    ETAG_HEADER,
    check_if_match,
    etag_of,
    idempotent,
    session,
    unit_of_work,
    versioned_patch,
)

blp = Blueprint("users", __name__, url_prefix="/api/v1", description="Users and tokens (admin)")


def _user_etag(user: User) -> str:
    return etag_of("user", user.id, user.version)


@blp.route("/users")
class Users(MethodView):
    @requires(*ADMIN)
    @blp.arguments(UserArgs, location="query")
    @blp.response(200, UserPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List users."""
        return service.list_users(session(), args)

    @requires(*ADMIN)
    @idempotent
    @blp.arguments(UserIn)
    @blp.response(201, UserOut, headers=ETAG_HEADER)
    def post(self, fields: dict[str, Any]) -> Any:
        """Add a user with a role."""
        user = service.create_user(session(), fields)
        return user, 201, {"ETag": _user_etag(user)}


@blp.route(f"/users/<{ID}:user_id>")
class UserById(MethodView):
    @requires(*ADMIN)
    @blp.response(200, UserOut, headers=ETAG_HEADER)
    def get(self, user_id: int) -> Any:
        """Read one user."""
        user = service.get_user(session(), user_id)
        return user, 200, {"ETag": _user_etag(user)}

    @requires(*ADMIN)
    @versioned_patch
    @blp.arguments(UserPatch)
    @blp.response(200, UserOut, headers=ETAG_HEADER)
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def patch(self, changes: dict[str, Any], user_id: int) -> Any:
        """Change a user's name, role, site, vehicle or active flag (honours If-Match)."""
        user = service.get_user(session(), user_id)
        check_if_match(_user_etag(user))
        user = service.update_user(session(), user, changes)
        return user, 200, {"ETag": _user_etag(user)}


@blp.route(f"/users/<{ID}:user_id>/tokens")
class UserTokens(MethodView):
    @requires(*ADMIN)
    @idempotent(redact=("token",))
    @blp.arguments(TokenIn)
    @blp.response(201, TokenOut)
    def post(self, fields: dict[str, Any], user_id: int) -> dict[str, Any]:
        """Issue a bearer token; it is shown once, in this response."""
        user = service.get_user(session(), user_id)
        return service.issue_token(session(), user, fields.get("label")).view()


@blp.route(f"/tokens/<{ID}:token_id>")
class TokenById(MethodView):
    @requires(*ADMIN)
    @unit_of_work
    @blp.response(204)
    def delete(self, token_id: int) -> None:
        """Revoke a token."""
        service.revoke_token(session(), token_id)


@blp.route("/me")
class Me(MethodView):
    @requires(*ALL_ROLES)
    @blp.response(200, UserOut)
    def get(self) -> Any:
        """The caller's own user and role."""
        return service.get_user(session(), current_caller().user_id)
