"""The run's figures for Prometheus: ``drdrill.prom``, and a push to a Pushgateway.

Teams watch recovery in the dashboards they already have, so every run's measurements
(RTO and RPO per drill, service and business function, verdicts, phase durations, and
how long ago each tier last passed) are written in Prometheus's text exposition format:

- ``<report_dir>/<run id>/drdrill.prom``, part of the run's bundle (and its checksums);
- ``<report_dir>/drdrill.prom``, the latest run's copy, replaced atomically, for
  node_exporter's textfile collector (``--collector.textfile.directory=<report_dir>``),
  which reads only the ``*.prom`` files directly in its directory;
- with ``--drill-pushgateway=URL`` (ini ``drill_pushgateway``), the same figures pushed
  to that Pushgateway under ``job="drdrill"``, grouped by the run's cadence and backend,
  so a daily run does not wipe the figures of the last monthly one.

Series are built with prometheus_client, which writes the format and pushes it, so the
escaping of label values (node ids hold ``[``, ``"`` and ``::``) is its, not ours.
A Pushgateway that cannot be reached costs nothing else: the files are written first,
and the failure is one of :attr:`PrometheusWriter.problems`, shown at the end of the run.

Every metric is listed, with its labels and meaning, in :data:`METRICS`; a test keeps
the README's table of them complete.

.. versionadded:: 0.6
"""

from __future__ import annotations

import re
import urllib.error
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.results import Verdict

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

    from prometheus_client import CollectorRegistry, Gauge

    from pytest_drdrill.reporting.writer import RunResults
    from pytest_drdrill.results import DrillResult, RpoResult, RtoResult, RunInfo
    from pytest_drdrill.targets import Targets

#: File name of the figures, in the run's directory and (the latest run's) in the report
#: directory.
FILENAME = "drdrill.prom"

#: The Pushgateway job every run pushes under.
JOB = "drdrill"

#: Seconds a push may take before it counts as failed.
PUSH_TIMEOUT = 10.0

_DRILL = ("drill", "scenario", "tier")
_SERVICE = ("drill", "scenario", "service")
_FUNCTION = ("drill", "scenario", "function", "tier")
_PHASE = ("drill", "scenario", "phase")

#: name -> (labels, help). Every series the writer emits, documented in one place.
METRICS: Mapping[str, tuple[tuple[str, ...], str]] = {
    "drdrill_run_info": (
        ("run_id", "git_sha", "backend", "cadence"),
        "The run these figures come from; always 1.",
    ),
    "drdrill_run_start_timestamp_seconds": ((), "When the run started, seconds since the epoch."),
    "drdrill_run_drills": (("verdict",), "Drills of the run with each verdict."),
    "drdrill_drill_rto_seconds": (
        _DRILL,
        "Recovery time measured from the clients' histories: fault injection to the first "
        "acknowledged write after which the service stayed up. Absent when it never "
        "recovered or no outage was seen.",
    ),
    "drdrill_drill_rpo_seconds": (
        _DRILL,
        "Data loss window: the fault's time minus the acknowledgement of the last surviving "
        "write before the first lost one; 0 when nothing was lost.",
    ),
    "drdrill_drill_lost_writes": (_DRILL, "Acknowledged writes lost by the drill."),
    "drdrill_drill_duration_seconds": (_DRILL, "How long the drill ran, start to end."),
    "drdrill_drill_rto_target_seconds": (_DRILL, "RTO over this warns (the drill's target)."),
    "drdrill_drill_rto_max_seconds": (_DRILL, "RTO over this fails (maximum acceptable)."),
    "drdrill_drill_verdict": (
        (*_DRILL, "verdict"),
        "1 for the drill's verdict (pass, warn, fail, inconclusive, aborted), 0 for the others.",
    ),
    "drdrill_drill_as_expected": (
        _DRILL,
        "1 when the drill is good evidence: passed or warned, or, for a negative control, "
        "went red as it must; 0 otherwise. Alert on this, not on verdict.",
    ),
    "drdrill_service_rto_seconds": (_SERVICE, "RTO of one service, from its own client."),
    "drdrill_service_rpo_seconds": (_SERVICE, "Data loss window of one service."),
    "drdrill_service_lost_writes": (_SERVICE, "Acknowledged writes one service lost."),
    "drdrill_service_verdict": ((*_SERVICE, "verdict"), "1 for the service's verdict, else 0."),
    "drdrill_function_rto_seconds": (
        _FUNCTION,
        "RTO of a business function: fault to every service it depends on back.",
    ),
    "drdrill_function_rpo_seconds": (_FUNCTION, "Widest data loss window of its services."),
    "drdrill_function_lost_writes": (_FUNCTION, "Lost writes summed over its services."),
    "drdrill_function_verdict": (
        (*_FUNCTION, "verdict"),
        "1 for the function's verdict, judged against its own targets, else 0.",
    ),
    "drdrill_phase_duration_seconds": (
        _PHASE,
        "Time spent in a recovery phase (detection, fencing, promotion, ...), summed when "
        "the phase ran more than once in the drill.",
    ),
    "drdrill_phase_occurrences": (_PHASE, "How many times the phase ran in the drill."),
    "drdrill_tier_last_pass_timestamp_seconds": (
        ("tier",),
        "Start of the latest run, in the report directory's history, in which a drill of "
        "the tier passed (negative controls excluded).",
    ),
    "drdrill_tier_since_last_pass_seconds": (
        ("tier",),
        "Seconds from that run's start to the end of this run.",
    ),
    "drdrill_tier_pass_interval_seconds": (
        ("tier", "cadence"),
        "How often the targets file's drill_schedule requires the tier to pass.",
    ),
}

# A phase repeated with a counter in its name ("schedule 12") is one series: a label value
# per example would make the series count grow with every run.
_NUMBERED = re.compile(r"^(.*\S)\s+\d+$")


def phase_label(name: str) -> str:
    """The ``phase`` label of a recovery phase: its name without a trailing counter."""
    match = _NUMBERED.match(name)
    return match.group(1) if match else name


def build_registry(
    run: RunInfo,
    drills: Sequence[DrillResult],
    entries: Iterable[Mapping[str, object]],
    *,
    targets: Targets | None = None,
    now: float,
) -> CollectorRegistry:
    """Build the run's series in a registry of their own (never the process's global one).

    .. versionadded:: 0.6

    :param run: facts about the run.
    :param drills: every drill's result.
    :param entries: the run history including this run (:attr:`RunResults.entries`),
        for the tiers' last passes.
    :param targets: the targets the run was judged against: the tier of a business
        function and the drill schedule come from it.
    :param now: epoch seconds the tiers' ages are measured to.
    :returns: a registry holding every series of :data:`METRICS` that has a value.
    """
    from prometheus_client import CollectorRegistry, Gauge

    from pytest_drdrill.reporting.trend import CADENCE_WINDOW_DAYS, last_passed

    registry = CollectorRegistry(auto_describe=True)
    gauges = {
        name: Gauge(name, text, labels, registry=registry)
        for name, (labels, text) in METRICS.items()
    }
    gauges["drdrill_run_info"].labels(
        run.run_id, run.git_sha or "", run.backend, run.cadence or ""
    ).set(1)
    gauges["drdrill_run_start_timestamp_seconds"].set(run.anchor.wall)
    for verdict in Verdict:
        count = sum(1 for drill in drills if drill.verdict is verdict)
        gauges["drdrill_run_drills"].labels(verdict.value).set(count)

    def tier_of_function(function: str) -> str:
        known = targets.business_functions.get(function) if targets is not None else None
        return known.tier if known is not None else ""

    for drill in drills:
        tier = ""
        if drill.target is not None:
            kind, name = drill.target.kind, drill.target.name
            tier = name if kind == "tier" else tier_of_function(name)
        key = (drill.name, drill.scenario, tier)
        _measured(gauges, "drill", key, drill.rto, drill.rpo)
        gauges["drdrill_drill_duration_seconds"].labels(*key).set(drill.ended_at - drill.started_at)
        if drill.target is not None:
            gauges["drdrill_drill_rto_target_seconds"].labels(*key).set(drill.target.rto_target)
            gauges["drdrill_drill_rto_max_seconds"].labels(*key).set(drill.target.rto_max)
        _verdict(gauges["drdrill_drill_verdict"], key, drill.verdict)
        gauges["drdrill_drill_as_expected"].labels(*key).set(1 if drill.as_expected else 0)
        for service in drill.services:
            skey = (drill.name, drill.scenario, service.service)
            _measured(gauges, "service", skey, service.rto, service.rpo)
            _verdict(gauges["drdrill_service_verdict"], skey, service.verdict)
        for function in drill.functions:
            ftier = tier_of_function(function.function)
            fkey = (drill.name, drill.scenario, function.function, ftier)
            _measured(gauges, "function", fkey, function.rto, function.rpo)
            _verdict(gauges["drdrill_function_verdict"], fkey, function.verdict)
        spent: dict[str, tuple[float, int]] = {}
        for phase in drill.phases:
            seconds, count = spent.get(phase_label(phase.name), (0.0, 0))
            spent[phase_label(phase.name)] = (seconds + phase.seconds, count + 1)
        for label, (seconds, count) in spent.items():
            pkey = (drill.name, drill.scenario, label)
            gauges["drdrill_phase_duration_seconds"].labels(*pkey).set(seconds)
            gauges["drdrill_phase_occurrences"].labels(*pkey).set(count)
    for tier, (passed, _run_id) in last_passed(entries).items():
        gauges["drdrill_tier_last_pass_timestamp_seconds"].labels(tier).set(passed)
        gauges["drdrill_tier_since_last_pass_seconds"].labels(tier).set(max(0.0, now - passed))
    schedule = targets.drill_schedule if targets is not None else {}
    for tier, cadence in schedule.items():
        interval = CADENCE_WINDOW_DAYS[cadence] * 86_400.0
        gauges["drdrill_tier_pass_interval_seconds"].labels(tier, cadence).set(interval)
    return registry


def _measured(
    gauges: Mapping[str, Gauge],
    level: str,
    key: tuple[str, ...],
    rto: RtoResult | None,
    rpo: RpoResult | None,
) -> None:
    if rto is not None and rto.seconds is not None:
        gauges[f"drdrill_{level}_rto_seconds"].labels(*key).set(rto.seconds)
    if rpo is not None:
        gauges[f"drdrill_{level}_rpo_seconds"].labels(*key).set(rpo.window_seconds)
        gauges[f"drdrill_{level}_lost_writes"].labels(*key).set(rpo.lost_writes)


def _verdict(gauge: Gauge, key: tuple[str, ...], verdict: Verdict) -> None:
    for each in Verdict:
        gauge.labels(*key, each.value).set(1 if each is verdict else 0)


class PrometheusWriter:
    """Writes ``drdrill.prom`` and, when given a Pushgateway, pushes the same figures.

    Runs after the history line is appended (its rank is above the history writer's),
    so that a slow or unreachable Pushgateway delays and costs no other report.

    .. versionadded:: 0.6

    :param pushgateway: the Pushgateway's URL (``--drill-pushgateway``), or ``None``.
    """

    rank = 80

    def __init__(self, pushgateway: str | None = None) -> None:
        self.pushgateway = pushgateway
        #: What could not be delivered, one message each; the reporter shows them.
        self.problems: list[str] = []

    def write(self, results: RunResults) -> list[tuple[str, Path]]:
        """Write the run's and the latest copy of ``drdrill.prom``; push when configured."""
        from prometheus_client import write_to_textfile

        registry = build_registry(
            results.run,
            results.drills,
            results.entries,
            targets=results.targets,
            now=timing.wall(),
        )
        path = results.directory / FILENAME
        latest = results.directory.parent / FILENAME
        # write_to_textfile writes a temporary file and renames it, so the textfile
        # collector never reads half a file.
        write_to_textfile(str(path), registry)
        write_to_textfile(str(latest), registry)
        written = [("prometheus", path), ("prometheus latest", latest)]
        if self.pushgateway is not None:
            self._push(registry, results.run, path)
        return written

    def _push(self, registry: CollectorRegistry, run: RunInfo, path: Path) -> None:
        from prometheus_client import push_to_gateway

        grouping = {"cadence": run.cadence or "none", "backend": run.backend}
        try:
            push_to_gateway(
                self.pushgateway or "",
                job=JOB,
                registry=registry,
                grouping_key=grouping,
                timeout=PUSH_TIMEOUT,
            )
        except OSError as exc:  # URLError, and the HTTP errors it raises as OSError
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            self.problems.append(
                f"could not push the run's figures to the Pushgateway at {self.pushgateway} "
                f"(--drill-pushgateway / ini drill_pushgateway): {reason}. Every report was "
                f"written; the figures are in {path}. Start the Pushgateway or fix the URL."
            )
