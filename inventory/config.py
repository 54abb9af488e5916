"""Typed settings read from ``INVENTORY_*`` environment variables, failing fast on bad values."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A configuration variable has a value the service cannot run with."""


def default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / 'var' / 'inventory.db'}"


def normalize_database_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and route them through psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=default_database_url)
    log_level: str = "INFO"
    max_body_bytes: int = 1_048_576
    max_upload_bytes: int = 10_485_760
    sqlite_busy_timeout_ms: int = 5_000
    pg_lock_timeout_ms: int = 5_000
    pg_statement_timeout_ms: int = 30_000
    db_pool_size: int = 5
    retry_after_seconds: int = 1
    idempotency_retention_days: int = 7
    # The pharmacy's business time zone: what "a day" and "a month" mean in reports and
    # period closes (IANA name, e.g. America/Chicago).
    timezone: str = "UTC"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        level = env.get("INVENTORY_LOG_LEVEL", "INFO").upper()
        if level not in LOG_LEVELS:
            raise SettingsError(f"INVENTORY_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        url = env.get("INVENTORY_DATABASE_URL") or default_database_url()
        if not (url.startswith("sqlite") or url.startswith("postgres")):
            raise SettingsError("INVENTORY_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        timezone = env.get("INVENTORY_TIMEZONE") or "UTC"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"INVENTORY_TIMEZONE must be an IANA time zone such as America/Chicago, "
                f"got {timezone!r}"
            ) from None
        return cls(
            timezone=timezone,
            database_url=normalize_database_url(url),
            log_level=level,
            max_body_bytes=_int(env, "INVENTORY_MAX_BODY_BYTES", 1_048_576, 1_024),
            max_upload_bytes=_int(env, "INVENTORY_MAX_UPLOAD_BYTES", 10_485_760, 1_024),
            sqlite_busy_timeout_ms=_int(env, "INVENTORY_SQLITE_BUSY_TIMEOUT_MS", 5_000, 0),
            pg_lock_timeout_ms=_int(env, "INVENTORY_PG_LOCK_TIMEOUT_MS", 5_000, 0),
            pg_statement_timeout_ms=_int(env, "INVENTORY_PG_STATEMENT_TIMEOUT_MS", 30_000, 0),
            db_pool_size=_int(env, "INVENTORY_DB_POOL_SIZE", 5, 1),
            retry_after_seconds=_int(env, "INVENTORY_RETRY_AFTER_SECONDS", 1, 1),
            idempotency_retention_days=_int(env, "INVENTORY_IDEMPOTENCY_RETENTION_DAYS", 7, 7),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
