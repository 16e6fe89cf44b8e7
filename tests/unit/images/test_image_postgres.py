"""The Postgres image's module databases (bundles/core/images/postgres/module_databases.py)."""


import pytest

from tests.unit.images.recipe_scripts import load_script, recipe_dir

RECIPE = recipe_dir("core", "postgres")


db = load_script("core", "postgres", "module_databases.py")
# What Postgres 15 stored for CREATE ROLE t PASSWORD 'pencil'.
PENCIL = ("SCRAM-SHA-256$4096:MeMTsDu0LPgGwmxo9SznLw==$9TKrA1ogX3ogBDgt2NUKjgCe8Cl6Oh3jPr2ZTTHohBE="
          ":KTnGQDrO+yU3MPN+kARbOSoKP42UMcgONsBsc8qT11Q=")


def test_parse_reads_each_module_and_ignores_blanks():
    spec = " clickstream:clickstream:postgres-clickstream, ,pilot:pilot:postgres-pilot"
    assert db.parse(spec) == [
        db.ModuleDatabase("clickstream", "clickstream", "postgres-clickstream"),
        db.ModuleDatabase("pilot", "pilot", "postgres-pilot"),
    ]
    assert db.parse("") == []


@pytest.mark.parametrize(("spec", "error"), [
    ("clickstream:clickstream", "database:user:secret"),
    ('a";drop:a:s', "database name"),
    ("a:Bad-User:s", "user name"),
    ("a:a:../etc/passwd", "secret name"),
])
def test_parse_refuses_what_could_not_be_a_name(spec, error):
    with pytest.raises(ValueError, match=error):
        db.parse(spec)


def test_verifiers_are_what_postgres_computes():
    assert db.verifier_matches("pencil", PENCIL)
    assert not db.verifier_matches("Pencil", PENCIL)
    assert not db.verifier_matches("pencil", "md5abc")
    assert db.verifier_matches("pencil", db.scram_verifier("pencil"))
    assert db.scram_verifier("pencil") != db.scram_verifier("pencil")  # a fresh salt each time


def test_statements_create_what_is_missing_without_a_password_in_them():
    entries = db.parse("airflow:airflow:postgres-airflow")
    sql = db.statements(entries, {"postgres": "super", "airflow": "s3cret"},
                        roles={"postgres": db.Role(True, "")}, databases={"postgres"})
    assert [s.split(" PASSWORD ")[0] for s in sql] == [
        'ALTER ROLE "postgres" WITH LOGIN',
        'CREATE ROLE "airflow" WITH LOGIN',
        'CREATE DATABASE "airflow" OWNER "airflow";',
        'REVOKE ALL ON DATABASE "airflow" FROM PUBLIC;',
    ]
    assert not any("s3cret" in s or "super" in s for s in sql)


def test_statements_are_empty_once_everything_is_in_place():
    entries = db.parse("pilot:pilot:postgres-pilot")
    roles = {"pilot": db.Role(True, PENCIL)}
    assert db.statements(entries, {"pilot": "pencil"}, roles, {"pilot"}) == []


def test_a_changed_password_or_a_role_without_login_is_altered():
    entries = db.parse("pilot:pilot:postgres-pilot")
    changed = db.statements(entries, {"pilot": "new"}, {"pilot": db.Role(True, PENCIL)}, {"pilot"})
    no_login = db.statements(entries, {"pilot": "pencil"}, {"pilot": db.Role(False, PENCIL)},
                             {"pilot"})
    for sql in (changed, no_login):
        assert len(sql) == 1
        assert sql[0].startswith('ALTER ROLE "pilot" WITH LOGIN PASSWORD \'SCRAM-SHA-256$4096:')


def test_passwords_come_from_the_secret_files(tmp_path):
    (tmp_path / "postgres-superuser").write_text("super\n")
    (tmp_path / "postgres-pilot").write_text("pw")
    entries = db.parse("pilot:pilot:postgres-pilot")
    passwords = db.passwords_of(entries, str(tmp_path), str(tmp_path / "postgres-superuser"))
    assert passwords == {"postgres": "super", "pilot": "pw"}
    with pytest.raises(ValueError, match=r"cannot read the password file .*postgres-x"):
        db.passwords_of(db.parse("x:x:postgres-x"), str(tmp_path), None)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        db.passwords_of(db.parse("x:x:empty"), str(tmp_path), None)


def test_monitoring_users_get_pg_monitor_once():
    entries = db.parse("monitoring:monitoring:postgres-monitoring")
    roles = {"monitoring": db.Role(True, PENCIL)}
    users = db.parse_monitoring_users(" monitoring, ", entries)
    assert db.statements(entries, {"monitoring": "pencil"}, roles, {"monitoring"}, users) == [
        'GRANT pg_monitor TO "monitoring";']
    roles["monitoring"] = db.Role(True, PENCIL, monitors=True)
    assert db.statements(entries, {"monitoring": "pencil"}, roles, {"monitoring"}, users) == []


def test_a_monitoring_user_must_be_a_module_databases_user():
    with pytest.raises(ValueError, match="'postgres' is not the user of a module database"):
        db.parse_monitoring_users("postgres", db.parse("pilot:pilot:postgres-pilot"))
