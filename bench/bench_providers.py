"""Benchmark: node loss under the reference failover, Patroni, repmgr and pg_auto_failover.

    flock /tmp/drdrill-heavy.lock python bench/bench_providers.py --runs=10

Each drill builds the topology through its HA provider (``pytest_drdrill.ha``, as the
plugin does for ``--drill-postgres-failover``), runs the plugin's measuring client
through the service endpoint, kills the leader (PostgreSQL and, under Patroni, Patroni
with it, under repmgr and pg_auto_failover repmgrd or pg_autoctl) and lets the provider
fail over. RTO and lost acknowledged writes come from the client's history, as in every
drill; the failover envelope is the one the drill computes from each stack's live settings
before the fault (Patroni's REST ``/config``, repmgr.conf, the monitor's ``pg_settings``).
Drills of the configurations take turns, so drift on the shared machine falls on all of
them alike.

Configurations (``--configs`` picks some):

- ``reference``: the plugin's orchestrator, its default health checks (100 ms, 3 misses).
- ``patroni-own``: Patroni's own defaults, ``ttl`` 30, ``loop_wait`` 10,
  ``retry_timeout`` 10: what a team gets when it sets nothing.
- ``patroni-drill``: the drill's defaults (``BOOTSTRAP_DCS``): ``ttl`` 10, ``loop_wait`` 1,
  ``retry_timeout`` 4.
- ``patroni-fast``: ``ttl`` 5, ``loop_wait`` 1, ``retry_timeout`` 2, on the rule
  ``loop_wait + 2 * retry_timeout <= ttl`` with equality.
- ``patroni-min``: ``ttl`` 3, ``loop_wait`` 1, ``retry_timeout`` 1, the smallest whole
  values the rule allows; Debian's Patroni 3.0.2 sets no minimums (3.2+ would raise
  them to 20 / 1 / 3).
- ``repmgr-own``: repmgr's own defaults, 6 reconnect attempts 10 s apart, monitoring
  every 2 s.
- ``repmgr-drill``: repmgrd with the drill's defaults (``FAST_REPMGRD``: 3 reconnect
  attempts 1 s apart, monitoring every 1 s), clients through HAProxy. It is also the most
  aggressive setting allowed: whole seconds only, and the reconnect window must outlast
  the visibility veto (2 monitor intervals), so 3 x 1 s over 2 x 1 s is the least.
- ``pgaf-own``: pg_auto_failover's own monitor defaults (health checks every 5 s, 2
  retries, unhealthy after 20 s, ``primary_demote_timeout`` 30 s).
- ``pgaf-drill``: pg_auto_failover with the drill's monitor settings (``FAST_MONITOR``:
  health checks every 1 s, unhealthy after 2 s, ``primary_demote_timeout`` 2 s), clients
  through the multi-host URI.
- ``pgaf-min``: the most aggressive monitor settings tried: checks every 500 ms with a
  500 ms timeout and one retry (the least the monitor takes), unhealthy after 1 s,
  ``primary_demote_timeout`` 1 s.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_failover import pct

from pytest_drdrill import assembly, timing
from pytest_drdrill.drill import Drill
from pytest_drdrill.faults import FaultInjector
from pytest_drdrill.ha import make_provider
from pytest_drdrill.record import DrillRecord
from pytest_drdrill.recovery.autofailover_envelope import MONITOR_DEFAULTS
from pytest_drdrill.recovery.orchestrator import MonitorSettings
from pytest_drdrill.recovery.reference import ReferenceFailover
from pytest_drdrill.results import Target
from pytest_drdrill.topology import autofailover_settings, repmgr_settings
from pytest_drdrill.topology.local import LocalBackend
from pytest_drdrill.topology.patroni_settings import check_settings

#: name -> Patroni timings merged over the drill's defaults (``None``: the reference; a
#: string: that provider with the drill's own defaults; a pair: that provider with these
#: settings, checked as its settings file would be).
CONFIGS: dict[str, dict[str, int] | str | tuple[str, dict[str, int]] | None] = {
    "reference": None,
    "patroni-own": {"ttl": 30, "loop_wait": 10, "retry_timeout": 10},
    "patroni-drill": {},
    "patroni-fast": {"ttl": 5, "loop_wait": 1, "retry_timeout": 2},
    "patroni-min": {"ttl": 3, "loop_wait": 1, "retry_timeout": 1},
    "repmgr-own": ("repmgr", {"reconnect_attempts": 6, "reconnect_interval": 10,
                              "monitor_interval_secs": 2}),
    "repmgr-drill": "repmgr",
    "pgaf-own": ("pg_auto_failover", dict(MONITOR_DEFAULTS)),
    "pgaf-drill": "pg_auto_failover",
    "pgaf-min": ("pg_auto_failover", {
        "health_check_period": 500, "health_check_max_retries": 1,
        "health_check_retry_delay": 100, "health_check_timeout": 500,
        "node_considered_unhealthy_timeout": 1000, "primary_demote_timeout": 1000,
    }),
}  # fmt: skip

#: What runs without ``--configs``: ``patroni-min`` recovered in none of 3 drills (see README).
DEFAULT_CONFIGS = (
    "reference", "patroni-own", "patroni-drill", "patroni-fast", "repmgr-own", "repmgr-drill",
    "pgaf-own", "pgaf-drill", "pgaf-min",
)  # fmt: skip

#: A tier loose enough that the envelope pre-check never refuses a configuration.
TARGET = Target("tier", "tier_1_critical", 900.0, 1800.0, 300.0, 900.0, 0)


@dataclass
class Figures:
    """What one configuration's drills measured."""

    rto: list[float] = field(default_factory=list)
    unrecovered: int = 0
    lost: list[int] = field(default_factory=list)
    cold: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    envelopes: list[tuple[float | None, float | None]] = field(default_factory=list)
    inside: int = 0
    described: str = ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10, help="node-loss drills per configuration")
    parser.add_argument(
        "--configs",
        default=",".join(DEFAULT_CONFIGS),
        help=f"comma-separated, from: {', '.join(CONFIGS)}",
    )
    parser.add_argument("--observe", type=float, default=90.0, help="seconds to await recovery")
    parser.add_argument(
        "--keep", type=Path, default=None, help="work here and keep the servers' logs afterwards"
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"--configs: unknown {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args, names, args.keep.resolve())
        return
    with tempfile.TemporaryDirectory(prefix="bench-providers-") as tmp:
        run(args, names, Path(tmp))


def provider_for(name: str) -> Any:
    over = CONFIGS[name]
    if over is None:
        return make_provider("reference")
    if isinstance(over, str):
        return make_provider(over)
    if isinstance(over, tuple):
        stack, values = over
        source = f"bench_providers {name}"
        if stack == "repmgr":
            return make_provider(
                stack, repmgr_settings=repmgr_settings.check_settings(values, source=source)
            )
        checked = autofailover_settings.check_settings(values, source=source)
        return make_provider(stack, autofailover_settings=checked)
    settings = check_settings(over, source=f"bench_providers {name}") if over else None
    return make_provider("patroni", patroni_settings=settings)


def drill_once(
    name: str, backend: LocalBackend, workdir: Path, observe: float, figures: Figures
) -> str:
    """One node-loss drill under ``name``; adds to ``figures``, returns the run's line."""
    provider = provider_for(name)
    reference = ReferenceFailover() if not provider.decides_failover else None
    t = timing.monotonic()
    topo = provider.topology(backend, workdir)
    figures.cold.append(timing.monotonic() - t)
    for part, seconds in topo.timings.items():
        figures.parts.setdefault(part, []).append(seconds)
    try:
        record = DrillRecord(
            f"bench-{workdir.name}", scenario="node-loss", cadence="monthly",
            target=TARGET, backend="local",
        )  # fmt: skip
        failover = (
            None
            if reference is None
            else lambda d, topo=topo, record=record: reference.pytest_drdrill_failover(
                service="postgres", topology=topo, record=record, detection=d
            )
        )
        drill = Drill(
            topology=topo,
            faults=FaultInjector(record, topology=topo),
            workload=assembly.workload(topo, record, "postgres"),
            record=record,
            monitor_settings=MonitorSettings(),
            failover=failover,
            observe=observe,
            on_result=lambda r: None,
            ha=provider,
        )
        with drill.running():
            drill.faults.crash(topo.primary)
            drill.await_recovery()
        result = drill.measure()
        drill.faults.heal()
    finally:
        topo.close()
    rto = result.rto.seconds if result.rto is not None else None
    lost = result.rpo.lost_writes if result.rpo is not None else None
    if lost is not None:
        figures.lost.append(lost)
    if rto is None:
        figures.unrecovered += 1
    else:
        figures.rto.append(rto)
    line = (
        f"{name:<14} RTO {'none' if rto is None else f'{rto:6.2f} s'}  "
        f"lost {'-' if lost is None else lost}  "
        f"cold start {figures.cold[-1]:5.2f} s  verdict {result.verdict.value}"
    )
    if drill.envelopes:
        env = drill.envelopes[-1]
        worst, best = env.worst_case_seconds, env.best_case_seconds
        figures.envelopes.append((worst, best))
        figures.described = env.describe()
        inside = (
            rto is not None and (best is None or rto >= best) and (worst is None or rto <= worst)
        )
        figures.inside += inside
        line += f"  envelope {_s(best)}..{_s(worst)} {'inside' if inside else 'OUTSIDE'}"
    if result.verdict.value != "pass":
        line += f"\n      reason: {result.reason}"
    return line


def run(args: argparse.Namespace, names: list[str], base: Path) -> None:
    t0 = timing.monotonic()
    backend = LocalBackend(base).start()
    print(f"session start (reap + template initdb + proxy): {timing.monotonic() - t0:.2f} s")
    for name in names:
        provider = provider_for(name)
        if provider.decides_failover:
            versions = provider.versions()
            print(f"HA stack {name}: {', '.join(f'{k} {v}' for k, v in versions.items())}")
    figures = {name: Figures() for name in names}
    try:
        for i in range(args.runs):
            for name in names:
                line = drill_once(name, backend, base / f"{name}-{i}", args.observe, figures[name])
                print(f"run {i + 1:2d} {line}", flush=True)
    finally:
        backend.close()
    report(names, figures, args.runs)


def report(names: list[str], figures: dict[str, Figures], runs: int) -> None:
    print()
    print(f"node loss, {runs} drills per configuration; RTO and lost writes from the client")
    header = (
        f"{'configuration':<14} {'settings':>14} {'RTO min':>8} {'p50':>7} {'p95':>7} "
        f"{'max':>7} {'lost':>5} {'envelope best..worst':>21} {'inside':>7} "
        f"{'cold p50':>9} {'p95':>6} {'vs ref':>7}"
    )
    print(header)
    print("-" * len(header))
    ref = figures.get("reference")
    ref_p50 = pct(ref.rto, 0.5) if ref is not None and ref.rto else None
    for name in names:
        f = figures[name]
        over = CONFIGS[name]
        timings = "-" if over is None else _timings(over)
        rto = f.rto or [float("nan")]
        envelope = "-"
        if f.envelopes:
            worst = {w for w, _ in f.envelopes}
            best = {b for _, b in f.envelopes}
            envelope = f"{_s(min(best, key=_key))}..{_s(max(worst, key=_key))}"
        ratio = (
            f"{pct(f.rto, 0.5) / ref_p50:6.0f}x"
            if ref_p50 and f.rto and name != "reference"
            else "-"
        )
        inside = f"{f.inside}/{runs}" if f.envelopes else "-"
        print(
            f"{name:<14} {timings:>14} {min(rto):7.2f}s {pct(rto, 0.5):6.2f}s "
            f"{pct(rto, 0.95):6.2f}s {max(rto):6.2f}s {sum(f.lost):>5} {envelope:>21} "
            f"{inside:>7} {pct(f.cold, 0.5):8.2f}s {pct(f.cold, 0.95):5.2f}s "
            f"{ratio:>7}"
        )
    print()
    for name in names:
        f = figures[name]
        if f.unrecovered:
            print(f"{name}: {f.unrecovered} of {runs} drills saw no recovery (left out of RTO)")
        if f.described:
            print(f"{name}: {f.described}")
        parts = ", ".join(f"{part} {pct(values, 0.5):.2f} s" for part, values in f.parts.items())
        print(f"{name}: cold start p50 by part (ready after): {parts}")
    print(
        "cold start: the whole topology (the PostgreSQL cluster, Redis, two object stores) "
        "built through the provider. lost: acknowledged writes missing afterwards, total over "
        "the drills. inside: measured RTO within the envelope computed before the fault. "
        "settings: Patroni ttl/loop_wait/retry_timeout; repmgr reconnect_attempts x "
        "reconnect_interval / monitor_interval_secs; pg_auto_failover health_check_period / "
        "node_considered_unhealthy_timeout."
    )


def _timings(over: dict[str, int] | str | tuple[str, dict[str, int]]) -> str:
    """The settings behind a row: Patroni's ttl/loop_wait/retry_timeout, or the others' own."""
    from pytest_drdrill.topology.patroni import BOOTSTRAP_DCS

    stack, values = over if isinstance(over, tuple) else (over, {})
    if stack == "repmgr":
        from pytest_drdrill.topology.repmgr import FAST_REPMGRD

        R = {**FAST_REPMGRD, **values}
        return f"{R['reconnect_attempts']}x{R['reconnect_interval']}s/{R['monitor_interval_secs']}s"
    if stack == "pg_auto_failover":
        from pytest_drdrill.topology.autofailover_cluster import FAST_MONITOR

        G = {**FAST_MONITOR, **{f"pgautofailover.{k.removeprefix('pgautofailover.')}": v
                                for k, v in values.items()}}  # fmt: skip
        period, unhealthy = (
            G["pgautofailover.health_check_period"],
            G["pgautofailover.node_considered_unhealthy_timeout"],
        )
        return f"{period / 1000:g}s/{unhealthy / 1000:g}s"
    assert isinstance(over, dict)

    dcs = {**BOOTSTRAP_DCS, **over}
    return f"{dcs['ttl']}/{dcs['loop_wait']}/{dcs['retry_timeout']}"


def _key(value: float | None) -> float:
    return float("inf") if value is None else value


def _s(value: float | None) -> str:
    return "none" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    main()
