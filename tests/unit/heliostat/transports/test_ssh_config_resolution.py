"""~/.ssh/config Host entries, as OpenSSH applies them to an address."""

import getpass
import textwrap
from pathlib import Path

import pytest

from heliostat.transports import TransportError
from heliostat.transports.address import SshAddress
from heliostat.transports.ssh_config import load_ssh_config, resolve


def config(tmp_path: Path, text: str):
    path = tmp_path / "config"
    path.write_text(textwrap.dedent(text))
    return load_ssh_config(path)


def test_a_host_entry_fills_in_what_the_address_leaves_out(tmp_path):
    resolved = resolve(SshAddress("prod"), config(tmp_path, """\
        Host prod
          HostName 10.1.2.3
          Port 2200
          User deploy
          IdentityFile ~/.ssh/prod_key
          IdentitiesOnly yes
          ProxyJump ops@bastion:2201,inner
          UserKnownHostsFile ~/.ssh/prod_known_hosts /etc/ssh/more
        """))
    assert (resolved.hostname, resolved.port, resolved.user) == ("10.1.2.3", 2200, "deploy")
    assert resolved.identity_files == (Path("~/.ssh/prod_key").expanduser(),)
    assert resolved.identities_only
    assert resolved.proxy_jump == (SshAddress("bastion", 2201, "ops"), SshAddress("inner"))
    assert resolved.known_hosts_files == (Path("~/.ssh/prod_known_hosts").expanduser(),
                                          Path("/etc/ssh/more"))


def test_the_address_wins_over_the_config(tmp_path):
    resolved = resolve(SshAddress("prod", 22, "root"), config(tmp_path, """\
        Host prod
          Port 2200
          User deploy
        """))
    assert (resolved.port, resolved.user) == (22, "root")


def test_without_an_entry_ssh_defaults_apply(tmp_path):
    resolved = resolve(SshAddress("other"), load_ssh_config(tmp_path / "missing"))
    assert (resolved.hostname, resolved.port, resolved.user) == ("other", 22, getpass.getuser())
    assert resolved.proxy_jump == () and resolved.identity_files == ()
    assert not resolved.identities_only


def test_wildcard_entries_apply_first_value_wins(tmp_path):
    resolved = resolve(SshAddress("db-7"), config(tmp_path, """\
        Host db-*
          User dbadmin
          ProxyJump bastion
        Host *
          User nobody
          Port 2022
        """))
    assert (resolved.user, resolved.port) == ("dbadmin", 2022)
    assert resolved.proxy_jump == (SshAddress("bastion"),)


def test_a_bad_port_is_named(tmp_path):
    with pytest.raises(TransportError, match="Port 'ssh'"):
        resolve(SshAddress("x"), config(tmp_path, "Host x\n  Port ssh\n"))
