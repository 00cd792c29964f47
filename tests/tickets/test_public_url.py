"""`public_url` (EDGEWATCH_PUBLIC_URL): what every link in a notification starts with."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from common.config import ConfigError
from server.settings import ServerSettings, load_settings
from tickets.settings import check_public_url, load_public_url, load_ticket_settings, server_url


def test_unset_it_is_the_servers_own_address(tmp_path: Path) -> None:
    assert load_ticket_settings(None, {}, data_dir=tmp_path).public_url == "http://127.0.0.1:8080"
    env = {"EDGEWATCH_HTTP_HOST": "10.1.2.3", "EDGEWATCH_HTTP_PORT": "9000"}
    assert load_ticket_settings(None, env, data_dir=tmp_path).public_url == "http://10.1.2.3:9000"
    conf = tmp_path / "edgewatch.toml"
    conf.write_text('[server]\nhost = "desk.internal"\nport = 8443\n')
    assert load_ticket_settings(conf, {}, data_dir=tmp_path).public_url == "http://desk.internal:8443"
    # The server agrees with the collector, and its command line wins over the file.
    assert load_settings(conf, {}).public_url == "http://desk.internal:8443"
    assert load_settings(conf, {}, host="127.0.0.1", port=8001).public_url == "http://127.0.0.1:8001"
    assert ServerSettings(data_dir=tmp_path, port=8123).public_url == "http://127.0.0.1:8123"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_a_wildcard_host_becomes_this_machines_name(host: str) -> None:
    assert server_url(host, 8080) == f"http://{socket.getfqdn()}:8080"


def test_an_ipv6_host_is_bracketed() -> None:
    assert server_url("::1", 8080) == "http://[::1]:8080"
    assert server_url("fd00::5", 80) == "http://[fd00::5]:80"


def test_set_in_the_environment_or_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "edgewatch.toml"
    conf.write_text('[tickets]\npublic_url = "https://desk.example.com/"\n[server]\nport = 9000\n')
    assert load_ticket_settings(conf, {}, data_dir=tmp_path).public_url == "https://desk.example.com"
    env = {"EDGEWATCH_PUBLIC_URL": "https://ops.example.com/edgewatch/"}
    assert load_ticket_settings(conf, env, data_dir=tmp_path).public_url == "https://ops.example.com/edgewatch"
    assert load_settings(conf, env).public_url == "https://ops.example.com/edgewatch"
    assert load_public_url(conf, env) == "https://ops.example.com/edgewatch"
    assert load_public_url(conf, {}) == "https://desk.example.com"


@pytest.mark.parametrize(("value", "reason"), [
    ("desk.example.com", "expected an http(s) URL with a host name"),
    ("/edgewatch", "expected an http(s) URL with a host name"),
    ("ftp://desk.example.com", "expected an http(s) URL with a host name"),
    ("https://", "expected an http(s) URL with a host name"),
    ("https://desk.example.com/a b", "must not contain spaces"),
    ("https://user:pw@desk.example.com", "must not carry a user name or password"),
    ("https://desk.example.com/?x=1", "must not have a query"),
    ("https://desk.example.com/#/", "must not have a query (?) or fragment (#)"),
    ("https://desk.example.com:99999", "has an invalid port"),
    ("https://:8080", "has no host name"),
])
def test_a_wrong_url_is_refused_naming_the_setting(tmp_path: Path, value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        check_public_url(value)
    with pytest.raises(ConfigError) as from_env:
        load_ticket_settings(None, {"EDGEWATCH_PUBLIC_URL": value}, data_dir=tmp_path)
    assert str(from_env.value).startswith("EDGEWATCH_PUBLIC_URL: public_url: ")
    conf = tmp_path / "edgewatch.toml"
    conf.write_text(f'[tickets]\npublic_url = "{value}"\n')
    with pytest.raises(ConfigError) as from_file:
        load_settings(conf, {})
    assert str(from_file.value).startswith(f"{conf}: tickets.public_url: ")


def test_an_unusable_server_address_asks_for_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"EDGEWATCH_PUBLIC_URL / tickets.public_url: public_url: unset, and the "
                                          r"server's own address 'http://bad host:8080' cannot serve as one"):
        load_ticket_settings(None, {"EDGEWATCH_HTTP_HOST": "bad host"}, data_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"EDGEWATCH_HTTP_PORT: value: expected an integer"):
        load_ticket_settings(None, {"EDGEWATCH_HTTP_PORT": "eighty"}, data_dir=tmp_path)
