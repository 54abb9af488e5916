"""API tests: a Flask app bound to the test's rolled-back transaction, and a client per role.

After every API test the ledger invariant is checked: balances, cost layers and serial units
equal the sum of the movements.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import Connection

from inventory import create_app
from inventory.db import Database
from inventory.ledger.audit import ledger_discrepancies
from inventory.users.models import Role
from tests.builders import Api, Catalog, token_for
from tests.conftest import Backend


@pytest.fixture
def app(backend: Backend, database: Database) -> Flask:
    app = create_app(backend.settings, database=database, TESTING=True)
    return app


@pytest.fixture(autouse=True)
def ledger_invariant(database: Database, connection: Connection) -> Iterator[None]:
    yield
    session = database.session()
    try:
        assert ledger_discrepancies(session) == []
    finally:
        session.close()


@pytest.fixture
def as_role(app: Flask, database: Database):  # type: ignore[no-untyped-def]
    def make(role: Role | str, **fields: object) -> Api:
        return Api(app.test_client(), token_for(database, Role(role), **fields))

    return make


@pytest.fixture
def admin(as_role) -> Api:  # type: ignore[no-untyped-def]
    return as_role(Role.ADMIN)


@pytest.fixture
def warehouse(as_role) -> Api:  # type: ignore[no-untyped-def]
    return as_role(Role.WAREHOUSE)


@pytest.fixture
def catalog(warehouse: Api, app: Flask) -> Catalog:
    return Catalog(warehouse, app)
