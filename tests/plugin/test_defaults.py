"""A project with no setup: the packaged targets, and the fault proxy named in the header."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pytest_drdrill._version import __version__
from pytest_drdrill.proxy import ProxyServer
from pytest_drdrill.targets import PACKAGED_TARGETS

ROOT = Path(__file__).resolve().parents[2]

PRINT_TARGETS = """
def test_print(drdrill_config):
    print()
    print(f"DRDRILL targets={drdrill_config.targets}")
    print(f"DRDRILL targets_packaged={drdrill_config.targets_packaged}")
"""


def test_packaged_targets_file_is_the_repository_one() -> None:
    """The package's requirements tables are the same bytes as fixtures/targets.yaml."""
    assert PACKAGED_TARGETS.read_bytes() == (ROOT / "fixtures" / "targets.yaml").read_bytes()


def test_without_a_targets_file_the_packaged_tables_are_used(pytester: pytest.Pytester) -> None:
    """No --drill-targets, no ini key, no fixtures/targets.yaml: packaged defaults, said so."""
    pytester.makepyfile(PRINT_TARGETS)
    result = pytester.runpytest("-s", "--drill=daily")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "drdrill: targets: packaged defaults (requirements tables)",
            "*",
            f"DRDRILL targets={PACKAGED_TARGETS}",
            "DRDRILL targets_packaged=True",
        ]
    )


def test_a_project_targets_file_wins_over_the_packaged_one(
    pytester: pytest.Pytester, targets_yaml: Path
) -> None:
    """fixtures/targets.yaml under the rootdir is used, and the header names it."""
    pytester.makepyfile(PRINT_TARGETS)
    result = pytester.runpytest("-s", "--drill=daily")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"drdrill: targets: {targets_yaml}", "*", "DRDRILL targets_packaged=False"]
    )


def test_a_named_missing_targets_file_in_ini_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """An ini drill_targets that does not exist is an error, never the packaged tables."""
    pytester.makeini("[pytest]\ndrill_targets = nowhere/targets.yaml\n")
    pytester.makepyfile(PRINT_TARGETS)
    result = pytester.runpytest("--drill=daily")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: drill targets file {pytester.path / 'nowhere' / 'targets.yaml'} does not "
            "exist. Point --drill-targets / ini drill_targets at yours*--drill-init*"
        ]
    )


# --- the fault proxy in the header ---------------------------------------------------------------


def test_header_names_the_builtin_proxy_and_its_version(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no Toxiproxy about, the header names the built-in proxy and the plugin's version."""
    monkeypatch.delenv("DRDRILL_TOXIPROXY_URL", raising=False)
    monkeypatch.setenv("PATH", os.defpath)
    pytester.makepyfile("def test_nothing(): pass\n")
    result = pytester.runpytest("--drill=daily")
    result.stdout.fnmatch_lines(
        [f"drdrill: backend local, fault proxy drdrill-proxy {__version__}"]
    )


# Answers -version as Toxiproxy 2.x does; as a server it would run the built-in proxy.
FAKE_TOXIPROXY = """#!/bin/sh
if [ "$1" = "-version" ]; then echo "toxiproxy-server version 2.12.0"; exit 0; fi
while [ $# -gt 0 ]; do
  case "$1" in -host) host=$2; shift 2 ;; -port) port=$2; shift 2 ;; *) exit 2 ;; esac
done
exec {python} -m pytest_drdrill.proxy --listen "$host:$port"
"""


def test_header_names_a_toxiproxy_server_on_path_with_its_version(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A toxiproxy-server on PATH is named with the version its -version flag prints."""
    bin_dir = pytester.path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "toxiproxy-server"
    program.write_text(FAKE_TOXIPROXY.format(python=sys.executable))
    program.chmod(0o755)
    monkeypatch.delenv("DRDRILL_TOXIPROXY_URL", raising=False)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.defpath]))
    pytester.makepyfile("def test_nothing(): pass\n")
    result = pytester.runpytest("--drill=daily")
    result.stdout.fnmatch_lines(
        [f"drdrill: backend local, fault proxy toxiproxy-server 2.12.0 ({program})"]
    )


def test_header_names_the_proxy_at_drdrill_toxiproxy_url(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DRDRILL_TOXIPROXY_URL's running proxy is named as its /version answers."""
    pytester.makepyfile("def test_nothing(): pass\n")
    with ProxyServer(tmp_path / "proxy") as server:
        monkeypatch.setenv("DRDRILL_TOXIPROXY_URL", server.url)
        result = pytester.runpytest("--drill=daily")
    result.stdout.fnmatch_lines(
        [f"drdrill: backend local, fault proxy drdrill-proxy {__version__} ({server.url})"]
    )


def test_header_says_when_the_proxy_at_the_url_does_not_answer(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL where nothing answers gives an unknown version in the header, not a crash."""
    monkeypatch.setenv("DRDRILL_TOXIPROXY_URL", "http://127.0.0.1:9")
    pytester.makepyfile("def test_nothing(): pass\n")
    result = pytester.runpytest("--drill=daily")
    result.stdout.fnmatch_lines(
        ["drdrill: backend local, fault proxy toxiproxy unknown (*) (http://127.0.0.1:9)"]
    )
    result.assert_outcomes(passed=1)


def test_header_names_the_stack_backends_proxy(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """The stack backend names the proxy its stack file points at, as its API answers."""
    assert pytester.runpytest("--drill-init").ret == 0
    stack = pytester.path / "fixtures" / "stack.yaml"
    pytester.makepyfile("def test_nothing(): pass\n")
    with ProxyServer(tmp_path / "proxy") as server:
        stack.write_text(stack.read_text().replace("http://127.0.0.1:8474", server.url))
        result = pytester.runpytest(
            "--drill=daily", "--drill-backend=stack", f"--drill-stack={stack}"
        )
    result.stdout.fnmatch_lines(
        [f"drdrill: backend stack, fault proxy drdrill-proxy {__version__} ({server.url})"]
    )


def test_header_names_the_docker_backends_proxy_image(pytester: pytest.Pytester) -> None:
    """Before its container runs, the Docker backend names the proxy by its image."""
    pytester.makepyfile("def test_nothing(): pass\n")
    result = pytester.runpytest(
        "--drill=daily", "--drill-backend=docker", "--drill-docker-images=proxy=example/toxiproxy:2"
    )
    result.stdout.fnmatch_lines(
        ["drdrill: backend docker, fault proxy toxiproxy (version read*) (example/toxiproxy:2)"]
    )
    result.assert_outcomes(passed=1)
