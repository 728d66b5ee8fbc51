"""docker-compose.yml brings up the stack, and the running-stack backend drills it.

The stack runs the substitute images (docker/compose.substitutes.yml), which this
machine can build; ``down -v`` at the end must leave no container, network or volume.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import psycopg
import pytest
from docker_helpers import ROOT

from pytest_drdrill import timing
from pytest_drdrill.proxy import ProxyClient
from pytest_drdrill.topology.docker_engine import connect

STACK_FILE = ROOT / "fixtures" / "stack-compose.yaml"
PROJECT = "drdrill-stack-test"
LABEL = {"label": "io.drdrill.stack=compose"}


def compose_command() -> list[str]:
    """``docker compose`` where the plugin exists, else Debian's ``docker-compose``."""
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither docker compose nor docker-compose is installed (scripts/docker-engine)")


def compose(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [*compose_command(), "-p", PROJECT, "-f", str(ROOT / "docker-compose.yml"), "-f",
            str(ROOT / "docker" / "compose.substitutes.yml"), *args]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False, timeout=300)


def stack_objects() -> list[str]:
    client = connect()
    try:
        return (
            [f"container {c.name}" for c in client.containers.list(all=True, filters=LABEL)]
            + [f"network {n.name}" for n in client.networks.list(filters=LABEL)]
            + [f"volume {v.name}" for v in client.volumes.list(filters=LABEL)]
        )
    finally:
        client.close()


def _wait_ready(timeout: float = 180.0) -> None:
    """Until the paths exist, both standbys stream and the endpoints answer."""
    deadline = timing.monotonic() + timeout
    last: object = None
    while timing.monotonic() < deadline:
        try:
            if len(ProxyClient("http://127.0.0.1:8474").proxies()) >= 14:
                dsn = "host=127.0.0.1 port=15441 user=postgres dbname=postgres"
                with psycopg.connect(dsn, connect_timeout=2, autocommit=True) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
                    ).fetchone()
                if row == (2,):
                    return
                last = f"{row} standbys streaming"
        except Exception as exc:  # anything not up yet
            last = exc
        timing.sleep(0.5)
    logs = compose("logs", "--tail=20").stdout
    pytest.fail(f"the compose stack was not ready within {timeout:.0f}s: {last}\n{logs}")


@pytest.fixture(scope="module")
def stack() -> Iterator[None]:
    """docker-compose.yml up with the substitutes; down -v afterwards, whatever happened."""
    if stack_objects():
        pytest.fail(f"a compose stack is already up: {stack_objects()}; docker compose down -v")
    up = compose("up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        _wait_ready()
        yield
    finally:
        down = compose("down", "-v", "--remove-orphans")
        assert down.returncode == 0, down.stderr
    assert stack_objects() == []


LATENCY_DRILL = """
import pytest


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="stack-latency")
def test_latency(drdrill):
    with drdrill.running():
        drdrill.faults.latency(drdrill.topology.client_paths["pg-primary"], 200)
        drdrill.workload.wait_for_acks(10, timeout=10)
        drdrill.faults.heal()
    drdrill.conclude_no_failover(min_added_ms=150)
    assert drdrill.topology.primary.name == "pg-primary"


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="stack-crash")
def test_crash_refused(drdrill):
    with drdrill.running():
        drdrill.faults.crash(drdrill.topology.primary)
"""


def test_compose_stack_is_drilled_and_disallowed_faults_are_refused(
    stack: None, pytester: pytest.Pytester
) -> None:
    """An allowed fault (latency) is drilled and judged; a crash the file forbids is refused."""
    shutil.copy(ROOT / "fixtures" / "targets.yaml", pytester.path / "targets.yaml")
    pytester.makepyfile(LATENCY_DRILL)
    result = pytester.runpytest(
        "--drill=monthly", "--drill-backend=stack", f"--drill-stack={STACK_FILE}",
        # The run allows destructive faults: the stack file's own allow-list must refuse.
        "--drill-allow-destructive", f"--drill-targets={pytester.path / 'targets.yaml'}",
        f"--drill-report-dir={pytester.path / 'reports'}", "-p", "no:cacheprovider", "-rA",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["drdrill: backend stack, fault proxy *", "PASS*stack-latency*"])
    result.stdout.fnmatch_lines(
        [
            f"*crash of pg-primary needs 'crash' (docker kill of the node's container), which "
            f"stack file {STACK_FILE} does not allow; add crash to its allowed_faults*",
        ]
    )
    # Nothing was started or stopped: every container of the stack still runs.
    client = connect()
    try:
        states = {c.name: c.status for c in client.containers.list(all=True, filters=LABEL)}
    finally:
        client.close()
    assert {name: s for name, s in states.items() if name != "drdrill-proxy-init"} == {
        name: "running" for name in states if name != "drdrill-proxy-init"
    }
