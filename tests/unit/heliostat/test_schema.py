import pytest

from heliostat.config import config_from_document
from heliostat.problems import InvalidInput
from heliostat.schema import apply_defaults, markdown_reference, platform_schema
from heliostat.yaml_source import load_yaml_text

HEADER = "apiVersion: heliostat/v1\nname: acme\n"


def problems(body: str) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        config_from_document(load_yaml_text(HEADER + body, "platform.yaml"))
    return [str(p) for p in caught.value.problems]


def test_the_example_of_the_design_is_reported_exactly():
    assert problems("modules:\n  clickstream:\n    event_api:\n      replicas: -1\n") == [
        "platform.yaml:6: modules.clickstream.event_api.replicas: "
        "-1 is less than the minimum of 1"]


def test_unknown_keys_point_at_the_key_and_suggest_the_right_one():
    (message,) = problems("modules:\n  clickstream:\n    evnt_api: {}\n")
    assert message.startswith("platform.yaml:5: modules.clickstream.evnt_api: unknown key "
                              "(did you mean 'event_api'?")


def test_unknown_module_and_profile():
    assert problems("profile: nomad\nmodules: {search: {}}\n") == [
        "platform.yaml:3: profile: 'nomad' is not one of ['compose', 'kubernetes', 'marathon']",
        "platform.yaml:4: modules.search: unknown key (expected one of: core, clickstream, "
        "pilot, commander, monitoring, airflow)",
    ]


def test_every_problem_is_reported_at_once_in_line_order():
    found = problems("gateway: {http_port: 0}\nmodules:\n  airflow: {workers: {replicas: x}}\n")
    assert [m.split(":")[1] for m in found] == ["3", "5"]
    assert "'x' is not of type 'integer'" in found[1]


def test_wrong_types_at_the_top():
    assert problems("modules: [clickstream]\n") == [
        "platform.yaml:3: modules: ['clickstream'] is not of type 'object'"]
    with pytest.raises(InvalidInput, match="expected a mapping of settings at the top"):
        config_from_document(load_yaml_text("- a\n", "platform.yaml"))


def test_required_keys_and_format():
    with pytest.raises(InvalidInput) as caught:
        config_from_document(load_yaml_text("profile: compose\n", "platform.yaml"))
    assert [str(p) for p in caught.value.problems] == [
        "platform.yaml:1: 'apiVersion' is required", "platform.yaml:1: 'name' is required"]
    with pytest.raises(InvalidInput) as caught:
        config_from_document(load_yaml_text("apiVersion: heliostat/v1\nname: Acme_1\n", "p.yaml"))
    assert [str(p) for p in caught.value.problems] == [
        "p.yaml:2: name: 'Acme_1' is not valid: Name of the platform: a DNS label (lower-case "
        "letters, digits and dashes, starting with a letter)"]


def test_duplicate_top_level_key_is_refused():
    assert problems("name: other\n") == [
        "platform.yaml:3: name: duplicate key (first defined on line 2)"]


def test_external_store_needs_its_connection_and_internal_refuses_it():
    assert problems("stores:\n  postgres: {mode: external, host: db}\n") == [
        "platform.yaml:4: stores.postgres: 'database' is required",
        "platform.yaml:4: stores.postgres: 'password_file' is required",
        "platform.yaml:4: stores.postgres: 'user' is required",
    ]
    assert problems("stores:\n  kafka:\n    bootstrap: [k:9092]\n") == [
        "platform.yaml:5: stores.kafka.bootstrap: not allowed with mode internal: "
        "this setting applies to mode external only"]


def test_a_module_cannot_run_without_the_modules_it_needs():
    assert problems("modules:\n  commander: {enabled: false}\n") == [
        "platform.yaml:4: modules.commander.enabled: false, but module 'pilot' needs "
        "'commander': enable commander or disable pilot"]


def test_defaults_fill_every_section_and_respect_store_mode():
    values = apply_defaults({"apiVersion": "heliostat/v1", "name": "acme",
                             "stores": {"postgres": {"mode": "external", "host": "db"}}})
    assert values["profile"] == "compose"
    assert values["modules"]["airflow"]["workers"]["log_retention_days"] == 15
    assert values["modules"]["monitoring"]["prometheus"]["replicas"] == 2
    assert values["modules"]["airflow"]["enabled"] is False
    assert values["stores"]["postgres"]["port"] == 5432
    assert "storage" not in values["stores"]["postgres"]  # internal-only setting
    assert values["stores"]["redis"] == {"mode": "internal", "storage": "5Gi"}


def test_assembled_schema_is_valid_json_schema_2020_12():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(platform_schema())


def test_filled_defaults_are_themselves_valid():
    from jsonschema import Draft202012Validator

    values = apply_defaults({"apiVersion": "heliostat/v1", "name": "acme"})
    assert list(Draft202012Validator(platform_schema()).iter_errors(values)) == []


def test_every_key_is_documented():
    missing = []

    def walk(schema, path):
        for key, sub in schema.get("properties", {}).items():
            if isinstance(sub, dict):
                if "$ref" not in sub and not sub.get("description"):
                    missing.append(".".join((*path, key)))
                walk(sub, (*path, key))

    walk(platform_schema(), ())
    assert missing == []


def test_markdown_reference_lists_module_keys_with_defaults():
    text = markdown_reference()
    assert "| `modules.airflow.workers.log_retention_days` | integer 1…365 | `15` |" in text
    assert "| `stores.kafka.replicas` | `1` \\| `3` | `1` |" in text
