"""Settings from INVENTORY_* variables: defaults, URL normalization and fail-fast checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory.config import Settings, SettingsError


def test_an_empty_environment_gives_the_documented_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.database_url == f"sqlite:///{Path(tmp_path) / 'var' / 'inventory.db'}"
    assert settings.is_sqlite
    assert settings.log_level == "INFO"
    assert settings.max_body_bytes == 1_048_576
    assert settings.sqlite_busy_timeout_ms == 5_000
    assert settings.pg_lock_timeout_ms == 5_000
    assert settings.pg_statement_timeout_ms == 30_000
    assert settings.db_pool_size == 5
    assert settings.retry_after_seconds == 1
    assert settings.idempotency_retention_days == 7


def test_empty_numeric_variables_fall_back_to_their_defaults():
    settings = Settings.from_env(
        {"INVENTORY_DATABASE_URL": "sqlite:///x.db", "INVENTORY_DB_POOL_SIZE": ""}
    )
    assert settings.db_pool_size == 5


def test_numeric_variables_are_read_as_integers():
    settings = Settings.from_env(
        {
            "INVENTORY_DATABASE_URL": "sqlite:///x.db",
            "INVENTORY_MAX_BODY_BYTES": "2048",
            "INVENTORY_DB_POOL_SIZE": "12",
            "INVENTORY_IDEMPOTENCY_RETENTION_DAYS": "30",
            "INVENTORY_SQLITE_BUSY_TIMEOUT_MS": "0",
        }
    )
    assert settings.max_body_bytes == 2048
    assert settings.db_pool_size == 12
    assert settings.idempotency_retention_days == 30
    assert settings.sqlite_busy_timeout_ms == 0


@pytest.mark.parametrize("scheme", ["postgres://", "postgresql://"])
def test_postgres_urls_are_routed_through_psycopg_3(scheme):
    settings = Settings.from_env({"INVENTORY_DATABASE_URL": f"{scheme}app:pw@db:5432/inventory"})
    assert settings.database_url == "postgresql+psycopg://app:pw@db:5432/inventory"
    assert not settings.is_sqlite


def test_an_explicit_psycopg_url_is_kept_as_given():
    url = "postgresql+psycopg://app@db/inventory"
    assert Settings.from_env({"INVENTORY_DATABASE_URL": url}).database_url == url


def test_the_log_level_is_case_insensitive():
    env = {"INVENTORY_DATABASE_URL": "sqlite://", "INVENTORY_LOG_LEVEL": "debug"}
    assert Settings.from_env(env).log_level == "DEBUG"


@pytest.mark.parametrize("level", ["LOUD", "", "info2", "TRACE"])
def test_an_unknown_log_level_is_refused(level):
    with pytest.raises(SettingsError, match="INVENTORY_LOG_LEVEL"):
        Settings.from_env({"INVENTORY_DATABASE_URL": "sqlite://", "INVENTORY_LOG_LEVEL": level})


@pytest.mark.parametrize(
    "name",
    ["INVENTORY_MAX_BODY_BYTES", "INVENTORY_DB_POOL_SIZE", "INVENTORY_PG_LOCK_TIMEOUT_MS"],
)
@pytest.mark.parametrize("raw", ["abc", "1.5", "ten"])
def test_a_numeric_variable_that_is_not_a_whole_number_is_refused(name, raw):
    with pytest.raises(SettingsError, match=f"{name} must be a whole number"):
        Settings.from_env({"INVENTORY_DATABASE_URL": "sqlite://", name: raw})


@pytest.mark.parametrize(
    ("name", "raw", "minimum"),
    [
        ("INVENTORY_MAX_BODY_BYTES", "1023", 1024),
        ("INVENTORY_DB_POOL_SIZE", "0", 1),
        ("INVENTORY_RETRY_AFTER_SECONDS", "0", 1),
        ("INVENTORY_IDEMPOTENCY_RETENTION_DAYS", "6", 7),
        ("INVENTORY_PG_STATEMENT_TIMEOUT_MS", "-1", 0),
    ],
)
def test_a_value_below_its_minimum_is_refused(name, raw, minimum):
    with pytest.raises(SettingsError, match=f"{name} must be at least {minimum}"):
        Settings.from_env({"INVENTORY_DATABASE_URL": "sqlite://", name: raw})


@pytest.mark.parametrize(
    "url", ["mysql://root@db/inventory", "oracle://x", "http://example.com", "inventory.db"]
)
def test_a_database_url_that_is_neither_sqlite_nor_postgres_is_refused(url):
    with pytest.raises(SettingsError, match="INVENTORY_DATABASE_URL"):
        Settings.from_env({"INVENTORY_DATABASE_URL": url})


def test_the_business_time_zone_defaults_to_utc():
    assert Settings.from_env({"INVENTORY_DATABASE_URL": "sqlite://"}).timezone == "UTC"
    assert Settings().timezone == "UTC"


def test_an_empty_business_time_zone_falls_back_to_utc():
    env = {"INVENTORY_DATABASE_URL": "sqlite://", "INVENTORY_TIMEZONE": ""}
    assert Settings.from_env(env).timezone == "UTC"


@pytest.mark.parametrize("zone", ["America/Chicago", "Europe/Paris", "UTC"])
def test_an_iana_business_time_zone_is_accepted(zone):
    env = {"INVENTORY_DATABASE_URL": "sqlite://", "INVENTORY_TIMEZONE": zone}
    assert Settings.from_env(env).timezone == zone


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Central Time", "../../etc/passwd", "/etc/hosts"])
def test_an_unknown_business_time_zone_is_refused(zone):
    env = {"INVENTORY_DATABASE_URL": "sqlite://", "INVENTORY_TIMEZONE": zone}
    with pytest.raises(SettingsError, match="INVENTORY_TIMEZONE must be an IANA time zone"):
        Settings.from_env(env)


def test_the_upload_limit_defaults_to_ten_mebibytes():
    assert Settings.from_env({"INVENTORY_DATABASE_URL": "sqlite://"}).max_upload_bytes == 10_485_760
    env = {"INVENTORY_DATABASE_URL": "sqlite://", "INVENTORY_MAX_UPLOAD_BYTES": ""}
    assert Settings.from_env(env).max_upload_bytes == 10_485_760


@pytest.mark.parametrize(("raw", "value"), [("1024", 1024), ("2048", 2048), ("52428800", 52428800)])
def test_the_upload_limit_is_read_as_an_integer(raw, value):
    env = {"INVENTORY_DATABASE_URL": "sqlite://", "INVENTORY_MAX_UPLOAD_BYTES": raw}
    settings = Settings.from_env(env)
    assert settings.max_upload_bytes == value
    assert isinstance(settings.max_upload_bytes, int)


@pytest.mark.parametrize("raw", ["1023", "0", "-1"])
def test_an_upload_limit_below_1024_bytes_is_refused(raw):
    env = {"INVENTORY_DATABASE_URL": "sqlite://", "INVENTORY_MAX_UPLOAD_BYTES": raw}
    with pytest.raises(SettingsError, match="INVENTORY_MAX_UPLOAD_BYTES must be at least 1024"):
        Settings.from_env(env)


@pytest.mark.parametrize("raw", ["10MB", "1.5", "abc"])
def test_an_upload_limit_that_is_not_a_whole_number_is_refused(raw):
    env = {"INVENTORY_DATABASE_URL": "sqlite://", "INVENTORY_MAX_UPLOAD_BYTES": raw}
    with pytest.raises(SettingsError, match="INVENTORY_MAX_UPLOAD_BYTES must be a whole number"):
        Settings.from_env(env)
