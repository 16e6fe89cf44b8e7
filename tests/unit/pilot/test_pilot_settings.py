"""Settings from the environment module.yaml gives Pilot; secrets from files."""

from __future__ import annotations

import pytest

from pilot.settings import Settings, SettingsError


def env(tmp_path, **extra: str) -> dict[str, str]:
    for name, value in (("key", "k" * 40), ("admin", "admin-password\n"), ("token", "t\n"),
                        ("pg", "pg-password\n")):
        (tmp_path / name).write_text(value)
    return {"PILOT_SECRET_KEY_FILE": str(tmp_path / "key"),
            "PILOT_ADMIN_PASSWORD_FILE": str(tmp_path / "admin"),
            "COMMANDER_URL": "http://commander:8000/", "COMMANDER_TOKEN_FILE":
                str(tmp_path / "token"),
            "POSTGRES_HOST": "postgres", "POSTGRES_PORT": "5432", "POSTGRES_DB": "pilot",
            "POSTGRES_USER": "pilot", "POSTGRES_SSLMODE": "disable",
            "POSTGRES_PASSWORD_FILE": str(tmp_path / "pg"), "PILOT_SESSION_HOURS": "12",
            "REDIS_URL": "redis://redis:6379/0", "PROMETHEUS_URL": "", **extra}


def test_the_environment_of_module_yaml(tmp_path):
    settings = Settings.from_env(env(tmp_path))
    assert settings.commander_url == "http://commander:8000"
    assert (settings.commander_token, settings.admin_password) == ("t", "admin-password")
    assert "password=pg-password" in settings.postgres_dsn
    assert "host=postgres" in settings.postgres_dsn and "sslmode=disable" in settings.postgres_dsn
    assert (settings.session_hours, settings.cookie_secure, settings.trusted_proxies) == (
        12, "auto", 1)
    # Modules not enabled: empty addresses, and Pilot says so where it would show them.
    assert (settings.prometheus_url, settings.alertmanager_url, settings.airflow_api_url) == (
        None, None, None)
    enabled = Settings.from_env(env(
        tmp_path, PROMETHEUS_URL="http://prometheus:9090/", PROMETHEUS_SCRAPE_SECONDS="30",
        ALERTMANAGER_URL="http://alertmanager:9093",
        AIRFLOW_API_URL="http://airflow-api-server:8080/airflow",
        FLOWER_URL="http://airflow-flower:5555/flower", AIRFLOW_LINK="/airflow/"))
    assert (enabled.prometheus_url, enabled.prometheus_scrape_seconds) == (
        "http://prometheus:9090", 30)
    assert enabled.airflow_api_url == "http://airflow-api-server:8080/airflow"
    # Secrets stay out of the repr (and so out of logs).
    assert "pg-password" not in repr(settings) and "k" * 40 not in repr(settings)


@pytest.mark.parametrize(("changes", "message"), [
    ({"PILOT_SECRET_KEY_FILE": ""}, "PILOT_SECRET_KEY_FILE is not set"),
    ({"PILOT_SECRET_KEY_FILE": "/nonexistent/key"}, "cannot read /nonexistent/key"),
    ({"COMMANDER_URL": ""}, "COMMANDER_URL is not set"),
    ({"PROMETHEUS_URL": "prometheus:9090"}, "PROMETHEUS_URL must be an http:// or https:// URL"),
    ({"FLOWER_URL": "http://"}, "FLOWER_URL must be an http:// or https:// URL"),
    ({"PROMETHEUS_SCRAPE_SECONDS": "0"}, "PROMETHEUS_SCRAPE_SECONDS must be a whole number"),
    ({"PILOT_SESSION_HOURS": "0"}, "from 1 to 720"),
    ({"PILOT_SESSION_HOURS": "12h"}, "from 1 to 720, not '12h'"),
    ({"PILOT_COOKIE_SECURE": "sometimes"}, "one of auto, always, never"),
])
def test_bad_settings_say_what_is_wrong(tmp_path, changes, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        Settings.from_env(env(tmp_path, **changes))


def test_an_empty_secret_file_is_refused(tmp_path):
    values = env(tmp_path)
    (tmp_path / "token").write_text("\n")
    with pytest.raises(SettingsError, match="is empty"):
        Settings.from_env(values)
