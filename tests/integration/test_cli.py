"""The ``inventory`` command: users, demo data, ledger check, OpenAPI file, key purge."""

from __future__ import annotations

import re
from pathlib import Path

import biip
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from inventory.care.models import Patient
from inventory.catalog.models import Item, Location, LocationKind, Tracking
from inventory.cli import main
from inventory.config import Settings
from inventory.db import Database, utcnow
from inventory.ledger.audit import ledger_discrepancies
from inventory.ledger.models import Lot, SerialUnit
from inventory.planning import service as planning
from inventory.therapies.models import InfusionDay, InfusionDayStatus, Therapy
from inventory.users.models import ApiToken
from tests.conftest import create_scratch_database


@pytest.fixture
def scratch_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    url, drop = create_scratch_database(getattr(request, "param", "sqlite"), tmp_path)
    request.addfinalizer(drop)
    return url


def _run(url: str, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env={"INVENTORY_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("scratch_url", ["sqlite", "postgresql"], indirect=True)
def test_users_create_prints_a_token_that_is_stored_only_as_a_hash(scratch_url: str):
    out = _run(scratch_url, "users", "create", "--name", "Ana Ruiz", "--role", "warehouse")
    token = re.search(r"token: (inv_\S+)", out)
    assert token
    database = Database(Settings(database_url=scratch_url))
    with database.transaction() as session:
        hashes = session.scalars(select(ApiToken.token_hash)).all()
    database.dispose()
    assert len(hashes) == 1 and token.group(1) not in hashes[0]


def test_users_create_refuses_an_unknown_role(scratch_url: str):
    result = CliRunner().invoke(
        main,
        ["users", "create", "--name", "X", "--role", "boss"],
        env={"INVENTORY_DATABASE_URL": scratch_url},
    )
    assert result.exit_code != 0 and "boss" in result.output


@pytest.mark.parametrize("scratch_url", ["sqlite", "postgresql"], indirect=True)
def test_demo_load_builds_a_believable_pharmacy_once_and_prints_a_token_per_role(scratch_url: str):
    first = _run(scratch_url, "demo", "load")
    roles = re.findall(r"^\s+(\w+)\s+.+\s(inv_\S+)$", first, re.MULTILINE)
    assert sorted(role for role, _ in roles) == [
        "admin",
        "coordinator",
        "driver",
        "finance",
        "warehouse",
    ]

    database = Database(Settings(database_url=scratch_url))
    with database.transaction() as session:
        kinds = {location.kind for location in session.scalars(select(Location)).all()}
        assert {
            LocationKind.STORAGE,
            LocationKind.STAGING,
            LocationKind.QUARANTINE,
            LocationKind.VEHICLE,
        } <= kinds
        items = session.scalars(select(Item)).all()
        assert len(items) >= 40
        for item in items:  # every GTIN passes GS1's own check (read back through biip)
            assert item.gtin is not None and biip.parse(item.gtin).gtin is not None
        assert {i.tracking for i in items} == {Tracking.NONE, Tracking.LOT, Tracking.SERIAL}
        serial_units = session.scalars(select(SerialUnit)).all()
        assert {u.item.category.value for u in serial_units} == {"pump", "pole"}
        lots = session.scalars(select(Lot)).all()
        today = utcnow().date()
        assert any((lot.expiry - today).days <= 45 for lot in lots), "some lots close to expiry"
        lots_per_item: dict[int, set[object]] = {}
        for lot in lots:
            lots_per_item.setdefault(lot.item_id, set()).add(lot.expiry)
        assert any(len(expiries) >= 2 for expiries in lots_per_item.values())
        assert ledger_discrepancies(session) == []
        item_count = len(items)
        # About 50 patients on three therapies, planned once: some days short, so a newcomer
        # sees shortages and reorder suggestions.
        assert len(session.scalars(select(Patient)).all()) >= 50
        assert {t.hcpcs for t in session.scalars(select(Therapy)).all()} == {
            "S9357",
            "S9338",
            "S9500",
        }
        statuses = set(session.scalars(select(InfusionDay.status)).all())
        assert {InfusionDayStatus.RESERVED, InfusionDayStatus.SHORT} <= statuses
        assert any(row.shortfall > 0 for row in planning.shortages(session, 14))
        assert planning.reorder_suggestions(session, 14)

    second = _run(scratch_url, "demo", "load")
    assert "already present" in second
    assert len(re.findall(r"inv_\S+", second)) == 5
    with database.transaction() as session:
        assert len(session.scalars(select(Item)).all()) == item_count
    database.dispose()


def test_ledger_check_reports_a_consistent_ledger(scratch_url: str):
    _run(scratch_url, "demo", "load")
    assert "ledger consistent" in _run(scratch_url, "ledger", "check")


def test_purging_idempotency_keys_refuses_less_than_seven_days(scratch_url: str):
    result = CliRunner().invoke(
        main,
        ["housekeeping", "purge-idempotency-keys", "--older-than-days", "3"],
        env={"INVENTORY_DATABASE_URL": scratch_url},
    )
    assert result.exit_code != 0
    assert "purged 0" in _run(scratch_url, "housekeeping", "purge-idempotency-keys")


def test_openapi_write_writes_the_spec(tmp_path: Path, scratch_url: str):
    target = tmp_path / "spec.yaml"
    _run(scratch_url, "openapi", "write", str(target))
    assert target.read_text(encoding="utf-8").startswith("components:")


def test_a_plain_postgresql_url_is_served_through_psycopg_3():
    from tests.conftest import postgres_available

    if postgres_available() is not None:
        pytest.skip("PostgreSQL not reachable")
    settings = Settings.from_env(
        {"INVENTORY_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres"}
    )
    database = Database(settings)
    with database.engine.connect() as connection:
        assert connection.dialect.driver == "psycopg"
    database.dispose()
