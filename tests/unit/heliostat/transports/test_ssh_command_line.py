"""What the ssh transport makes of platform.yaml and of the command line it runs on the host."""

from pathlib import Path

import click

from heliostat.cli_ssh import remote_arguments
from heliostat.transports.address import SshAddress
from heliostat.transports.ssh_run import SshTarget


@click.command("upgrade")
@click.argument("revision", type=int, required=False)
@click.option("-f", "--file", "config_file", type=click.Path(path_type=Path))
@click.option("--state-dir", type=click.Path(path_type=Path))
@click.option("--bundle", type=click.Path(path_type=Path))
@click.option("--install", "install_missing", is_flag=True)
@click.option("--output", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.option("--label", multiple=True)
def upgrade(**_: object) -> None:
    """Stands in for a real command: only its parameters matter."""


def test_local_paths_become_the_staged_ones_and_defaults_are_left_out():
    values = {"revision": None, "config_file": Path("/home/me/platform.yaml"),
              "state_dir": None, "bundle": Path("/home/me/b.bundle"), "install_missing": True,
              "output_format": "json", "label": ("a", "b")}
    arguments = remote_arguments(upgrade, values, {"config_file": "/s/p.yaml",
                                                   "bundle": "/s/b.bundle"})
    assert arguments == ["upgrade", "--file", "/s/p.yaml", "--bundle", "/s/b.bundle",
                         "--install", "--output", "json", "--label", "a", "--label", "b"]


def test_arguments_and_host_paths_pass_through():
    values = {"revision": 3, "config_file": Path("p.yaml"), "state_dir": Path("/srv/state"),
              "bundle": None, "install_missing": False, "output_format": "text", "label": ()}
    assert remote_arguments(upgrade, values, {"config_file": "/s/p.yaml"}) == [
        "upgrade", "3", "--file", "/s/p.yaml", "--state-dir", "/srv/state"]


def test_settings_from_platform_yaml_and_the_flags():
    target = SshTarget.from_settings(
        "ssh://deploy@db-01:2222",
        {"key_file": "~/.ssh/deploy", "key_passphrase_file": "", "known_hosts": "/etc/kh",
         "host_key_fingerprint": "SHA256:" + "a" * 43, "jump_hosts": ["ops@bastion:2201"]},
        accepted=["SHA256:" + "b" * 43])
    assert target.address == SshAddress("db-01", 2222, "deploy")
    assert target.jumps == (SshAddress("bastion", 2201, "ops"),)
    assert target.credentials.key_file == Path("~/.ssh/deploy").expanduser()
    assert target.credentials.passphrase_file is None
    assert target.policy.known_hosts == (Path("/etc/kh"),)
    assert target.policy.accepted == {"SHA256:" + "a" * 43, "SHA256:" + "b" * 43}


def test_the_default_known_hosts_defers_to_ssh_config():
    target = SshTarget.from_settings("ssh://h", {"known_hosts": "~/.ssh/known_hosts"})
    assert target.policy.known_hosts == ()


def test_the_workstation_clock_reaches_the_hosts_doctor(monkeypatch):
    from heliostat.doctor import clock_rule
    from heliostat.transports.local import WORKSTATION_CLOCK_VARIABLE, workstation_clock

    monkeypatch.delenv(WORKSTATION_CLOCK_VARIABLE, raising=False)
    assert workstation_clock() is None
    monkeypatch.setenv(WORKSTATION_CLOCK_VARIABLE, "-75.250 0.010")
    assert workstation_clock() == (-75.25, 0.01)
    found = clock_rule(*workstation_clock(), "the Docker host's clock", "the workstation's")
    assert found.status == "fail"
    assert "the Docker host's clock is 75.25s behind the workstation's" in found.text
    monkeypatch.setenv(WORKSTATION_CLOCK_VARIABLE, "garbled")
    assert workstation_clock() is None
