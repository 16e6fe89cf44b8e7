from pathlib import Path

from heliostat.access import platform_access
from heliostat.config import load_config
from heliostat.model import build_model


def test_the_default_platform_is_reached_through_its_gateway(default_config):
    access = platform_access(build_model(default_config), Path("/state/heliostat/secrets"))
    urls = dict(access.urls)
    assert access.urls[0] == ("pilot", "http://localhost:8080/")  # the root route first
    assert urls["event-api"] == "http://localhost:8080/v1/"
    assert [(name, path) for name, _, path in access.logins] == [
        ("pilot-admin-password", Path("/state/heliostat/secrets/pilot-admin-password"))]
    text = "\n".join(access.lines())
    assert "Password of Pilot's first user, `admin`: in /state/heliostat/secrets/" in text
    assert access.to_json()["logins"]["pilot-admin-password"]["file"].endswith(
        "/pilot-admin-password")


def test_a_port_and_host_of_ones_own_and_only_what_runs(tmp_path: Path):
    config = tmp_path / "platform.yaml"
    config.write_text("apiVersion: heliostat/v1\nname: p\nprofile: compose\n"
                      "gateway: {hostname: data.example.net, http_port: 80}\n"
                      "modules: {pilot: {enabled: false}, airflow: {enabled: true}}\n")
    access = platform_access(build_model(load_config(config)), tmp_path)
    urls = dict(access.urls)
    assert "pilot" not in urls
    assert urls["event-api"] == "http://data.example.net/v1/"
    assert [name for name, _, _ in access.logins] == ["airflow-admin-password"]
