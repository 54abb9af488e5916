"""Users and bearer tokens: roles, token issue and revocation, vehicles, If-Match, replays."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from inventory.db import Database
from inventory.idempotency import IdempotencyRecord
from inventory.users.models import ApiToken
from tests.builders import Api, Catalog, ok, problem, unique

ROLES = ["admin", "coordinator", "warehouse", "driver", "finance"]


def tokens_of(database: Database, user_id: int) -> list[ApiToken]:
    with database.session() as session:
        rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)).all()
        session.expunge_all()
        return list(rows)


def new_user(admin: Api, role: str = "warehouse", **fields: Any) -> dict[str, Any]:
    return ok(admin.post("/users", {"name": unique(f"{role} user"), "role": role, **fields}), 201)


def issue(admin: Api, user_id: int, **body: Any) -> dict[str, Any]:
    return ok(admin.post(f"/users/{user_id}/tokens", body), 201)


def speaking_as(app: Flask, token: str) -> Api:
    return Api(app.test_client(), token)


@pytest.mark.parametrize("role", ROLES)
def test_an_admin_can_create_a_user_of_each_role(admin: Api, role):
    user = ok(admin.post("/users", {"name": "Dana Reyes", "role": role, "site": "NORTH"}), 201)
    assert isinstance(user["id"], int)
    assert (user["name"], user["role"], user["site"]) == ("Dana Reyes", role, "NORTH")
    if role == "driver":  # a driver gets a vehicle location of their own at their site
        vans = ok(admin.get("/locations", limit=500))["items"]
        van = next(loc for loc in vans if loc["id"] == user["vehicle_location_id"])
        assert (van["kind"], van["site"]) == ("vehicle", "NORTH")
    else:
        assert user["vehicle_location_id"] is None
    assert user["active"] is True
    listed = ok(admin.get("/users", role=role, limit=500))["items"]
    assert user["id"] in [row["id"] for row in listed]


def test_an_unknown_role_is_refused(admin: Api):
    errors = problem(admin.post("/users", {"name": "X", "role": "pharmacist"}), 422)["errors"]
    assert list(errors) == ["role"]


def test_a_token_is_shown_once_and_only_its_sha256_hash_is_stored(admin: Api, database: Database):
    user = new_user(admin)
    issued = issue(admin, user["id"], label="packing station 2")
    token = issued["token"]
    assert token.startswith("inv_")
    assert len(token) - len("inv_") >= 43
    assert issued["user_id"] == user["id"]
    assert issued["label"] == "packing station 2"

    [row] = tokens_of(database, user["id"])
    assert row.id == issued["id"]
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored_values = [getattr(row, column.key) for column in ApiToken.__table__.columns]
    assert all(token not in str(value) for value in stored_values)


def test_two_tokens_for_one_user_are_different(admin: Api):
    user = new_user(admin)
    assert issue(admin, user["id"])["token"] != issue(admin, user["id"])["token"]


def test_a_new_token_authenticates_as_its_user(admin: Api, app: Flask):
    user = new_user(admin, "coordinator", site="SOUTH")
    me = ok(speaking_as(app, issue(admin, user["id"])["token"]).get("/me"))
    assert me["id"] == user["id"]
    assert me["role"] == "coordinator"
    assert me["site"] == "SOUTH"


def test_a_token_for_an_unknown_user_is_404(admin: Api):
    problem(admin.post("/users/999999/tokens", {}), 404)


def test_a_revoked_token_is_refused_with_401(admin: Api, app: Flask):
    user = new_user(admin)
    issued = issue(admin, user["id"])
    caller = speaking_as(app, issued["token"])
    ok(caller.get("/me"))

    response = admin.delete(f"/tokens/{issued['id']}")
    assert response.status_code == 204
    assert response.get_data() == b""
    problem(caller.get("/me"), 401)


def test_revoking_one_token_leaves_the_users_other_tokens_working(admin: Api, app: Flask):
    user = new_user(admin)
    revoked, kept = issue(admin, user["id"]), issue(admin, user["id"])
    assert admin.delete(f"/tokens/{revoked['id']}").status_code == 204
    assert ok(speaking_as(app, kept["token"]).get("/me"))["id"] == user["id"]


def test_revoking_an_unknown_token_is_404(admin: Api):
    problem(admin.delete("/tokens/999999"), 404)


def test_a_deactivated_users_token_is_refused_with_401(admin: Api, app: Flask):
    user = new_user(admin)
    caller = speaking_as(app, issue(admin, user["id"])["token"])
    ok(caller.get("/me"))

    assert ok(admin.patch(f"/users/{user['id']}", {"active": False}))["active"] is False
    problem(caller.get("/me"), 401)


def test_a_deactivated_user_gets_no_new_token(admin: Api, database: Database):
    user = new_user(admin)
    ok(admin.patch(f"/users/{user['id']}", {"active": False}))
    problem(admin.post(f"/users/{user['id']}/tokens", {}), 409)
    assert tokens_of(database, user["id"]) == []


def test_a_reactivated_users_token_works_again(admin: Api, app: Flask):
    user = new_user(admin)
    caller = speaking_as(app, issue(admin, user["id"])["token"])
    ok(admin.patch(f"/users/{user['id']}", {"active": False}))
    ok(admin.patch(f"/users/{user['id']}", {"active": True}))
    assert ok(caller.get("/me"))["id"] == user["id"]


def test_a_driver_can_ride_a_vehicle_location(admin: Api, catalog: Catalog):
    van = catalog.location("vehicle")
    driver = new_user(admin, "driver", vehicle_location_id=van["id"])
    assert driver["vehicle_location_id"] == van["id"]


@pytest.mark.parametrize("kind", ["storage", "staging", "quarantine"])
def test_a_driver_vehicle_that_is_not_a_vehicle_location_is_refused(
    admin: Api, catalog: Catalog, kind
):
    shelf = catalog.location(kind)
    body = {"name": "Driver", "role": "driver", "vehicle_location_id": shelf["id"]}
    errors = problem(admin.post("/users", body), 422)["errors"]
    assert list(errors) == ["vehicle_location_id"]


def test_a_driver_vehicle_that_does_not_exist_is_refused(admin: Api):
    body = {"name": "Driver", "role": "driver", "vehicle_location_id": 999999}
    errors = problem(admin.post("/users", body), 422)["errors"]
    assert list(errors) == ["vehicle_location_id"]


@pytest.mark.parametrize("role", ["admin", "coordinator", "warehouse", "finance"])
def test_only_drivers_have_a_vehicle(admin: Api, catalog: Catalog, role):
    van = catalog.location("vehicle")
    body = {"name": "Not a driver", "role": role, "vehicle_location_id": van["id"]}
    errors = problem(admin.post("/users", body), 422)["errors"]
    assert list(errors) == ["vehicle_location_id"]


def test_a_driver_with_a_vehicle_cannot_become_another_role_and_keep_it(
    admin: Api, catalog: Catalog
):
    van = catalog.location("vehicle")
    driver = new_user(admin, "driver", vehicle_location_id=van["id"])
    errors = problem(admin.patch(f"/users/{driver['id']}", {"role": "warehouse"}), 422)
    assert list(errors["errors"]) == ["vehicle_location_id"]
    moved = ok(
        admin.patch(f"/users/{driver['id']}", {"role": "warehouse", "vehicle_location_id": None})
    )
    assert (moved["role"], moved["vehicle_location_id"]) == ("warehouse", None)


def test_an_edit_with_the_current_etag_applies_and_a_stale_one_is_412(admin: Api):
    user = new_user(admin)
    first = admin.patch(f"/users/{user['id']}", {"name": "First name"})
    assert ok(first)["name"] == "First name"
    current = first.headers["ETag"]
    assert current == f'"user-{user["id"]}-v2"'

    second = admin.patch(f"/users/{user['id']}", {"site": "EAST"}, {"If-Match": current})
    assert ok(second)["site"] == "EAST"
    assert second.headers["ETag"] == f'"user-{user["id"]}-v3"'

    problem(admin.patch(f"/users/{user['id']}", {"name": "Lost"}, {"If-Match": current}), 412)
    after = ok(admin.patch(f"/users/{user['id']}", {}, {"If-Match": second.headers["ETag"]}))
    assert (after["name"], after["site"]) == ("First name", "EAST")


def test_editing_an_unknown_user_is_404(admin: Api):
    problem(admin.patch("/users/999999", {"name": "Nobody"}), 404)


def test_replaying_a_token_request_returns_the_first_response_without_the_secret(
    admin: Api, database: Database, app: Flask
):
    user = new_user(admin)
    key = {"Idempotency-Key": unique("token-key")}
    first = admin.post(f"/users/{user['id']}/tokens", {"label": "phone"}, key)
    issued = ok(first, 201)
    assert issued["token"].startswith("inv_")
    assert "Idempotent-Replayed" not in first.headers

    again = admin.post(f"/users/{user['id']}/tokens", {"label": "phone"}, key)
    replayed = ok(again, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert replayed["token"] is None
    assert {k: v for k, v in replayed.items() if k != "token"} == {
        k: v for k, v in issued.items() if k != "token"
    }

    assert [row.id for row in tokens_of(database, user["id"])] == [issued["id"]]
    with database.session() as session:
        bodies = session.scalars(select(IdempotencyRecord.response_body)).all()
    assert bodies, "the first response was stored"
    assert all(issued["token"] not in (body or "") for body in bodies)
    # The first response's token still works: the replay revoked nothing.
    assert ok(speaking_as(app, issued["token"]).get("/me"))["id"] == user["id"]


def test_the_same_idempotency_key_with_a_different_body_is_422(admin: Api, database: Database):
    user = new_user(admin)
    key = {"Idempotency-Key": unique("token-key")}
    ok(admin.post(f"/users/{user['id']}/tokens", {"label": "phone"}, key), 201)
    errors = problem(admin.post(f"/users/{user['id']}/tokens", {"label": "tablet"}, key), 422)
    assert list(errors["errors"]) == ["Idempotency-Key"]
    assert len(tokens_of(database, user["id"])) == 1


def test_the_same_idempotency_key_for_another_user_is_422(admin: Api, database: Database):
    first, second = new_user(admin), new_user(admin)
    key = {"Idempotency-Key": unique("token-key")}
    ok(admin.post(f"/users/{first['id']}/tokens", {}, key), 201)
    problem(admin.post(f"/users/{second['id']}/tokens", {}, key), 422)
    assert tokens_of(database, second["id"]) == []


@pytest.mark.parametrize("role", ROLES)
def test_me_answers_for_every_role(as_role, role):
    caller = as_role(role)
    me = ok(caller.get("/me"))
    assert me["role"] == role
    assert me["active"] is True
    assert me["name"].startswith(f"test {role}")


def test_me_without_a_token_is_401(app: Flask):
    response = app.test_client().get("/api/v1/me")
    problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_me_with_a_made_up_token_is_401(app: Flask):
    problem(speaking_as(app, "inv_" + "A" * 43).get("/me"), 401)


@pytest.mark.parametrize("role", ["coordinator", "warehouse", "driver", "finance"])
def test_only_admins_manage_users_and_tokens(as_role, admin: Api, role):
    user = new_user(admin)
    issued = issue(admin, user["id"])
    caller = as_role(role)
    problem(caller.get("/users"), 403)
    problem(caller.post("/users", {"name": "Sneaky", "role": "admin"}), 403)
    problem(caller.patch(f"/users/{user['id']}", {"role": "admin"}), 403)
    problem(caller.post(f"/users/{user['id']}/tokens", {}), 403)
    problem(caller.delete(f"/tokens/{issued['id']}"), 403)


def test_drivers_with_the_same_long_site_each_get_their_own_vehicle(admin: Api):
    site = "S" * 32
    first = new_user(admin, "driver", site=site)
    second = new_user(admin, "driver", site=site)
    ok(
        admin.post(
            "/locations",
            {
                "code": f"VEHICLE-USER-{second['id'] + 1}",
                "name": "van",
                "kind": "vehicle",
                "site": site,
            },
        ),
        201,
    )
    third = new_user(admin, "driver", site=site)  # its natural code is taken: another one
    vans = {
        first["vehicle_location_id"],
        second["vehicle_location_id"],
        third["vehicle_location_id"],
    }
    assert None not in vans and len(vans) == 3
