"""Alembic environment: runs on a connection handed in by the caller, or on the configured URL."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.types import TypeDecorator

import inventory.models  # noqa: F401 - registers every table on the metadata
from inventory.config import Settings, normalize_database_url
from inventory.db import Base, make_engine

config = context.config


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Migrations name plain SQL types, never the app's own column types, so they never change
    meaning when the app's code does."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    settings = Settings.from_env()
    url = config.get_main_option("sqlalchemy.url")
    if url:
        settings = Settings(**{**settings.__dict__, "database_url": normalize_database_url(url)})
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run against a database.")
run_online()
