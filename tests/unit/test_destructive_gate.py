"""Destructive faults on shared backends are refused before injection without the flag."""

from __future__ import annotations

import pytest

from pytest_drdrill.faults import FaultInjector
from pytest_drdrill.faults.guard import DESTRUCTIVE, DestructiveFaultRefused, destructive_gate
from pytest_drdrill.record import DrillRecord


class _Fault:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.target = "pg-primary"
        self.injected = False

    def inject(self) -> None:
        self.injected = True

    def heal(self) -> None:
        self.injected = False


def _injector(backend: str, *, allowed: bool) -> FaultInjector:
    injector = FaultInjector(DrillRecord("t", scenario="s", cadence="monthly", target=None,
                                         backend=backend))  # fmt: skip
    injector.guard = destructive_gate(backend, allowed=allowed)
    return injector


@pytest.mark.parametrize("backend", ["docker", "stack"])
@pytest.mark.parametrize("kind", sorted(DESTRUCTIVE))
def test_refused_on_shared_backends_and_nothing_is_injected(backend: str, kind: str) -> None:
    injector = _injector(backend, allowed=False)
    fault = _Fault(kind)
    with pytest.raises(DestructiveFaultRefused, match=r"need --drill-allow-destructive \(ini "):
        injector.inject(fault)
    assert not fault.injected
    assert not injector.record.faults


@pytest.mark.parametrize("kind", ["link-cut", "partition", "freeze", "stop", "container-pause"])
def test_faults_that_heal_always_run(kind: str) -> None:
    fault = _Fault(kind)
    _injector("docker", allowed=False).inject(fault)
    assert fault.injected


@pytest.mark.parametrize(("backend", "allowed"), [("local", False), ("docker", True)])
def test_allowed_by_the_flag_or_on_the_drill_s_own_servers(backend: str, allowed: bool) -> None:
    fault = _Fault("crash")
    _injector(backend, allowed=allowed).inject(fault)
    assert fault.injected


def test_the_flag_and_the_ini_key_reach_the_config(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "def test_print(drdrill_config):\n"
        "    print()\n"
        "    print('ALLOW', drdrill_config.allow_destructive)\n"
    )
    pytester.runpytest("-s").stdout.fnmatch_lines(["ALLOW False"])
    pytester.runpytest("-s", "--drill-allow-destructive").stdout.fnmatch_lines(["ALLOW True"])
    pytester.makeini("[pytest]\ndrill_allow_destructive = true\n")
    pytester.runpytest("-s").stdout.fnmatch_lines(["ALLOW True"])
