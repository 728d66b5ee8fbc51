"""``python -m pytest_drdrill doctor`` run as a user runs it, against this machine's facts.

Each expectation is computed here independently of the doctor's own checks (the servers'
finders, ``shutil.which``, the account database), so the test holds on any machine and
fails when the doctor reports something the machine does not have, or misses something
it lacks.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_drdrill.errors import DrillError
from pytest_drdrill.topology.postgres import PostgresInstall
from pytest_drdrill.topology.redis import RedisInstall

SRC = Path(__file__).resolve().parents[2] / "src"


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the doctor in a fresh interpreter, with this checkout's package first."""
    base = dict(os.environ if env is None else env)
    base["PYTHONPATH"] = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "pytest_drdrill", "doctor", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=60,
        check=False,
    )


def line(output: str, status: str, name: str) -> str:
    """The report line of ``name`` with ``status``; fails listing the output if absent."""
    pattern = re.compile(rf"^  {status}\s+{re.escape(name)}\s{{2,}}(.*)$", re.MULTILINE)
    match = pattern.search(output)
    assert match, f"no {status} line for {name!r} in:\n{output}"
    return match.group(1)


def fix_of(output: str, name: str) -> str:
    """The ``fix:`` line printed under ``name``'s MISSING line."""
    match = re.search(
        rf"^  MISSING\s+{re.escape(name)}\s.*\n\s+fix: (.*)$", output, flags=re.MULTILINE
    )
    assert match, f"no fix under {name!r} in:\n{output}"
    return match.group(1)


def _installed(finder: type[PostgresInstall] | type[RedisInstall]) -> object | None:
    try:
        return finder.discover()
    except DrillError:
        return None


def test_doctor_reports_what_this_machine_has() -> None:
    """Versions and paths in the report are the machine's; the exit status follows them."""
    result = doctor()
    out = result.stdout
    postgres = _installed(PostgresInstall)
    redis = _installed(RedisInstall)
    if isinstance(postgres, PostgresInstall):
        detail = line(out, "OK", "PostgreSQL")
        assert detail.startswith(f"{postgres.version}: {postgres.bindir}")
    else:
        line(out, "MISSING", "PostgreSQL")
    if isinstance(redis, RedisInstall):
        assert line(out, "OK", "Redis") == f"{redis.version}: {redis.server}"
    else:
        line(out, "MISSING", "Redis")
    for name, program in [
        ("Patroni", "patroni"),
        ("etcd", "etcd"),
        ("pgBackRest", "pgbackrest"),
        ("Barman", "barman"),
        ("Pushgateway", "prometheus-pushgateway"),
    ]:
        path = shutil.which(program)
        if path is None:
            assert f"apt-get install -y {program.replace('etcd', 'etcd-server')}" in fix_of(
                out, name
            )
        else:
            assert line(out, "OK", name).endswith(f": {path}")
    account_ok = True
    if os.geteuid() == 0:
        try:
            account_ok = pwd.getpwnam("postgres").pw_uid != 0
        except KeyError:
            account_ok = False
    required = [postgres is not None, redis is not None, account_ok, shutil.which("ipcrm")]
    expected = 0 if all(required) else 1
    assert result.returncode == expected, out + result.stderr
    verdict = "can run here" if expected == 0 else "cannot run here"
    assert f"doctor: the default drills {verdict}" in out


def test_stripped_path_reports_missing_parts_with_fixes(tmp_path: Path) -> None:
    """With nothing on PATH, Redis and ipcrm are MISSING with their fixes, and exit is 1."""
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    result = doctor(env=env)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "No redis-server found on PATH" in line(out, "MISSING", "Redis")
    assert "apt-get install -y redis-server" in fix_of(out, "Redis")
    assert "apt-get install -y util-linux" in fix_of(out, "ipcrm")
    assert "apt-get install -y patroni" in fix_of(out, "Patroni")
    assert "apt-get install -y chromium chromium-driver" in fix_of(out, "Chromium (browser test)")
    assert re.search(r"cannot run here: .*Redis.*ipcrm.* missing", out), out
    # Optional parts are reported but never named as what stops the default drills.
    blocking = re.search(r"cannot run here: (.*?) missing", out)
    assert blocking is not None
    assert "Patroni" not in blocking.group(1)


def test_pg_bin_option_is_checked(tmp_path: Path) -> None:
    """--drill-pg-bin pointing at an empty directory: PostgreSQL MISSING, exit 1."""
    result = doctor(f"--drill-pg-bin={tmp_path}")
    detail = line(result.stdout, "MISSING", "PostgreSQL")
    assert f"not found in {tmp_path}" in detail
    assert "--drill-pg-bin" in fix_of(result.stdout, "PostgreSQL")
    assert result.returncode == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="the server account is checked only as root")
def test_unknown_server_account_is_missing() -> None:
    """--drill-run-as naming no account: MISSING with the useradd that creates it."""
    result = doctor("--drill-run-as=drdrill-no-such-user")
    assert "'drdrill-no-such-user'" in line(result.stdout, "MISSING", "server account")
    assert "useradd --system" in fix_of(result.stdout, "server account")
    assert result.returncode == 1


def test_without_a_command_usage_is_shown() -> None:
    """``python -m pytest_drdrill`` alone is a usage error that lists ``doctor``."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest_drdrill"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=False,
    )
    assert result.returncode == 2
    assert "doctor" in result.stderr


def test_missing_optional_part_does_not_fail() -> None:
    """No Docker daemon answering (DOCKER_HOST at a closed port): MISSING, exit unchanged."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    usual = doctor().returncode
    result = doctor(env={**os.environ, "DOCKER_HOST": f"tcp://127.0.0.1:{port}"})
    assert "no Docker daemon answers" in line(result.stdout, "MISSING", "Docker daemon")
    assert "docker-engine" in fix_of(result.stdout, "Docker daemon")
    assert result.returncode == usual
    if usual == 0:
        assert "optional parts missing: " in result.stdout
        assert "Docker daemon" in result.stdout.rsplit("optional parts missing: ", 1)[1]
