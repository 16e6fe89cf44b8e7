from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from clickstream.config import Settings


def test_postgres_settings_become_one_dsn_with_the_password_from_its_file(tmp_path: Path):
    password = tmp_path / "postgres-clickstream"
    password.write_text("s3cret\n")
    settings = Settings.from_env({"POSTGRES_HOST": "db.internal", "POSTGRES_PORT": "6432",
                                  "POSTGRES_DB": "heliostat", "POSTGRES_USER": "cs",
                                  "POSTGRES_SSLMODE": "verify-full",
                                  "POSTGRES_PASSWORD_FILE": str(password)})
    assert conninfo_to_dict(settings.postgres_dsn) == {
        "host": "db.internal", "port": "6432", "dbname": "heliostat", "user": "cs",
        "sslmode": "verify-full", "password": "s3cret"}
    assert "s3cret" not in repr(settings)


def test_sslmode_defaults_to_prefer():
    assert conninfo_to_dict(Settings.from_env({}).postgres_dsn)["sslmode"] == "prefer"
