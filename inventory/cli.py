"""The ``inventory`` command: migrations, users, demo data, the OpenAPI file, housekeeping."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import yaml
from sqlalchemy.orm import Session

from inventory.config import Settings
from inventory.db import Database


@contextmanager
def _unit_of_work() -> Iterator[Session]:
    """One transaction on a database opened for this command only (closed afterwards)."""
    database = Database(Settings.from_env())
    try:
        with database.transaction() as session:
            yield session
    finally:
        database.dispose()


@click.group()
def main() -> None:
    """Home infusion inventory service."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    from inventory.schema_version import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url)
    click.echo("database is at the newest migration")


@main.group()
def users() -> None:
    """Users and tokens."""


@users.command("create")
@click.option("--name", required=True)
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "coordinator", "warehouse", "driver", "finance"]),
)
@click.option("--site", default=None)
def users_create(name: str, role: str, site: str | None) -> None:
    """Create a user and print a new token (shown once)."""
    from inventory.users import service
    from inventory.users.models import Role

    with _unit_of_work() as session:
        user = service.create_user(session, {"name": name, "role": Role(role), "site": site})
        issued = service.issue_token(session, user, label="cli")
    click.echo(f"user {user.id} ({role}) token: {issued.secret}")


@main.group()
def demo() -> None:
    """Demo data."""


@demo.command("load")
def demo_load() -> None:
    """Load a demo pharmacy (once) and print a token for each role."""
    from inventory.demo.loader import load

    with _unit_of_work() as session:
        loaded_now, logins = load(session)
    click.echo("demo data loaded" if loaded_now else "demo data already present; new tokens:")
    for login in logins:
        click.echo(f"  {login.role.value:<12} {login.name:<20} {login.token}")


@main.group()
def openapi() -> None:
    """The OpenAPI document."""


def render_openapi() -> str:
    from inventory import create_app

    settings = Settings(database_url="sqlite://")
    app = create_app(settings)
    spec = app.extensions["inventory.api"].spec.to_dict()
    return yaml.safe_dump(json.loads(json.dumps(spec)), sort_keys=True, allow_unicode=True)


@openapi.command("write")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), required=False)
def openapi_write(path: Path | None) -> None:
    """Write the spec generated from the code (default: openapi/openapi.yaml)."""
    target = path or Path("openapi/openapi.yaml")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_openapi(), encoding="utf-8")
    click.echo(f"wrote {target}")


@main.group()
def housekeeping() -> None:
    """Routine maintenance."""


@housekeeping.command("purge-idempotency-keys")
@click.option("--older-than-days", type=click.IntRange(min=7), default=None)
def purge_keys(older_than_days: int | None) -> None:
    """Forget idempotency keys past retention (never fewer than 7 days)."""
    from inventory import idempotency

    settings = Settings.from_env()
    with _unit_of_work() as session:
        count = idempotency.purge(session, older_than_days or settings.idempotency_retention_days)
    click.echo(f"purged {count} idempotency keys")


@main.group()
def ledger() -> None:
    """The stock ledger."""


@ledger.command("check")
def ledger_check() -> None:
    """Verify balances, cost layers and serial units equal the sum of the movements."""
    from inventory.ledger.audit import ledger_discrepancies

    with _unit_of_work() as session:
        problems = ledger_discrepancies(session)
    for problem in problems:
        click.echo(problem, err=True)
    click.echo("ledger consistent" if not problems else f"{len(problems)} discrepancies")
    sys.exit(1 if problems else 0)
