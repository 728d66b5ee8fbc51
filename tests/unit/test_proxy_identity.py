"""Naming the fault proxy and its version, before and after it starts."""

from __future__ import annotations

from pathlib import Path

from pytest_drdrill._version import __version__
from pytest_drdrill.proxy import ProxyServer
from pytest_drdrill.proxy.identity import (
    BUILTIN,
    TOXIPROXY_SERVER,
    builtin,
    from_api_version,
    of_program,
    of_url,
)


def _program(tmp_path: Path, body: str) -> str:
    path = tmp_path / "toxiproxy-server"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_builtin_is_named_with_the_plugin_version() -> None:
    """The built-in proxy's label is its name and the installed plugin's version."""
    assert builtin().label == f"{BUILTIN} {__version__}"


def test_api_versions_tell_builtin_from_toxiproxy() -> None:
    """The built-in's '+drdrill' answer names it; any other answer is Toxiproxy's."""
    assert from_api_version(f"{__version__}+drdrill").label == f"{BUILTIN} {__version__}"
    assert from_api_version("2.12.0").label == "toxiproxy 2.12.0"
    launched = from_api_version("2.12.0", name=TOXIPROXY_SERVER, where="/bin/x")
    assert str(launched) == "toxiproxy-server 2.12.0 (/bin/x)"


def test_of_program_reads_the_version_flag(tmp_path: Path) -> None:
    """A Toxiproxy 2.x executable is asked with -version and named with what it prints."""
    program = _program(
        tmp_path,
        '[ "$1" = -version ] && echo "toxiproxy-server version v2.12.0" && exit 0\nexit 9\n',
    )
    assert of_program(program).label == "toxiproxy-server 2.12.0"


def test_of_program_without_the_flag_is_unknown_not_started(tmp_path: Path) -> None:
    """An old release refusing -version (exit 2, no version) gives an unknown version."""
    program = _program(tmp_path, 'echo "flag provided but not defined: -version" >&2\nexit 2\n')
    identity = of_program(program)
    assert identity.name == TOXIPROXY_SERVER
    assert identity.version.startswith("unknown (")


def test_of_url_asks_a_running_proxy(tmp_path: Path) -> None:
    """A running built-in proxy reached by URL is named from its /version answer."""
    with ProxyServer(tmp_path / "proxy") as server:
        assert of_url(server.url).label == f"{BUILTIN} {__version__}"


def test_of_url_where_nothing_answers_is_unknown() -> None:
    """Nothing at the URL: an unknown version with the reason, not an exception."""
    identity = of_url("http://127.0.0.1:9", timeout=0.5)
    assert identity.version.startswith("unknown (")
    assert identity.where == "http://127.0.0.1:9"
