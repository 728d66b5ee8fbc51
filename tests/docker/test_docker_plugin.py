"""The plugin on the Docker backend: auto's choice, and a drill with a Docker-level fault."""

from __future__ import annotations

import pytest
from docker_helpers import ROOT

NO_DRILL = "def test_nothing(): pass\n"


def test_auto_picks_docker_when_the_daemon_has_the_images(pytester: pytest.Pytester) -> None:
    """--drill-backend=auto says it chose Docker, and why, in the terminal header."""
    pytester.makepyfile(NO_DRILL)
    result = pytester.runpytest(
        "--drill=daily", "--drill-backend=auto", f"--drill-targets={ROOT / 'fixtures/targets.yaml'}"
    )
    result.stdout.fnmatch_lines(
        [
            "drdrill: backend docker (auto: Docker * answers and has drdrill/postgres, *), "
            "fault proxy *"
        ]
    )


def test_auto_picks_local_when_an_image_is_missing(pytester: pytest.Pytester) -> None:
    """With an image the daemon lacks, auto falls back to local and names the image."""
    pytester.makeini(
        f"[pytest]\ndrill_targets = {ROOT / 'fixtures/targets.yaml'}\n"
        "drill_docker_images = redis=drdrill/no-such-image\n"
        "drill_backend = auto\n"
    )
    pytester.makepyfile(NO_DRILL)
    result = pytester.runpytest("--drill=daily")
    result.stdout.fnmatch_lines(
        ["drdrill: backend local (auto: Docker * answers but lacks redis=drdrill/no-such-image), *"]
    )


DISCONNECT_DRILL = """
import pytest

from pytest_drdrill.faults import docker as docker_faults


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", scenario="primary-disconnected",
                     max_lost_writes=0)
def test_primary_disconnected(drdrill):
    with drdrill.running():
        drdrill.faults.inject(docker_faults.disconnect(drdrill.topology.primary))
        drdrill.await_recovery()
    result = drdrill.conclude()
    assert drdrill.topology.primary.name == "pg-sync"
    assert [f.kind for f in drdrill.record.faults] == ["network-disconnect"]
    assert result.rpo.lost_writes == 0
"""


def test_a_docker_fault_is_drilled_through_the_injector(
    pytester: pytest.Pytester, drill_args: list[str]
) -> None:
    """The primary's container leaves its network; failover to the sync standby, nothing lost."""
    pytester.makepyfile(DISCONNECT_DRILL)
    result = pytester.runpytest(*drill_args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "drdrill: backend docker, fault proxy drdrill-proxy *",
            "PASS*primary-disconnected*lost 0*",
        ]
    )
