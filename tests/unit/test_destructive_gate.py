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


class _Node:
    def __init__(self, name: str) -> None:
        self.name = name
        self.crashed = False

    def crash(self) -> None:
        self.crashed = True

    def is_running(self) -> bool:
        return not self.crashed


class _Topology:
    def __init__(self, *nodes: _Node) -> None:
        self._nodes = {n.name: n for n in nodes}

    def nodes(self) -> dict[str, _Node]:
        return dict(self._nodes)


def test_a_server_the_topology_did_not_start_is_never_touched() -> None:
    """A fault aimed at a server outside the topology is refused before anything happens."""
    from pytest_drdrill.errors import FaultError

    own, stranger = _Node("pg-primary"), _Node("pg-primary")  # same name, another server
    record = DrillRecord("t", scenario="s", cadence="monthly", target=None, backend="stack")
    injector = FaultInjector(record, topology=_Topology(own))  # type: ignore[arg-type]
    with pytest.raises(FaultError, match=r"not a node of this drill's topology \(pg-primary\)"):
        injector.crash(stranger)  # type: ignore[arg-type]
    assert not stranger.crashed and not record.faults
    injector.crash(own)  # type: ignore[arg-type]
    assert own.crashed
