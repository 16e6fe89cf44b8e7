"""SSH addresses as platform.yaml and ProxyJump write them."""

import pytest

from heliostat.transports import TransportError
from heliostat.transports.address import SshAddress, known_hosts_name, parse_address, parse_jumps


@pytest.mark.parametrize(("text", "expected"), [
    ("ssh://deploy@db-01:2222", SshAddress("db-01", 2222, "deploy")),
    ("ssh://db-01", SshAddress("db-01", None, None)),
    ("root@10.0.0.7", SshAddress("10.0.0.7", None, "root")),
    ("bastion.example.com:22", SshAddress("bastion.example.com", 22, None)),
])
def test_addresses_parse(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["ssh://", "user@", "host:port", "a b", "ssh://h:0",
                                  "ssh://h:70000"])
def test_bad_addresses_say_how_to_write_one(text):
    with pytest.raises(TransportError, match=r"SSH address|port"):
        parse_address(text)


def test_unset_parts_print_as_unset():
    assert str(SshAddress("h")) == "h"
    assert str(SshAddress("h", 2222, "u")) == "u@h:2222"


def test_proxy_jump_lists_hops_in_order():
    assert parse_jumps("a@first:2201, second") == (SshAddress("first", 2201, "a"),
                                                   SshAddress("second"))
    assert parse_jumps("none") == ()
    assert parse_jumps("") == ()


def test_known_hosts_names_brackets_other_ports():
    assert known_hosts_name("h", 22) == "h"
    assert known_hosts_name("127.0.0.1", 2222) == "[127.0.0.1]:2222"
