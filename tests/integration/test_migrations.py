"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import inventory.models  # noqa: F401
from inventory.db import Base, Database
from inventory.schema_version import alembic_config, current_revision, head_revision


def test_there_is_exactly_one_migration_head():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, heads


def test_migrating_from_empty_to_head_matches_the_models(scratch: Database):
    with scratch.engine.connect() as connection:
        assert current_revision(connection) == head_revision()
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_alembic_check_reports_no_pending_changes(scratch: Database):
    with scratch.engine.begin() as connection:
        command.check(alembic_config(connection=connection))


def test_migrations_downgrade_to_empty_and_back(scratch: Database):
    with scratch.engine.begin() as connection:
        command.downgrade(alembic_config(connection=connection), "base")
    with scratch.engine.connect() as connection:
        assert current_revision(connection) is None
    with scratch.engine.begin() as connection:
        command.upgrade(alembic_config(connection=connection), "head")
    with scratch.engine.connect() as connection:
        assert current_revision(connection) == head_revision()
