"""The machine-readable drill report, ``drill.json``.

The file follows ``drill.schema.json`` (shipped next to this module); bump
:data:`SCHEMA_VERSION` on any change that could break a reader. Adding a field is not
such a change: readers look fields up by name, so version 0.2's per-service,
per-function, lag and notes fields, 0.3's timeline, resources, notifications and
expected verdict, 0.5's split-brain evidence, and 0.6's HA roles and timeline switches,
were added under version 1.
Monotonic stamps are written as ISO 8601 UTC strings through the run's
:class:`~pytest_drdrill.timing.Anchor`, and as offsets in seconds from the drill's start
where a plot needs them.
"""

from __future__ import annotations

import collections
import importlib.resources
import json
from typing import TYPE_CHECKING, Any

from pytest_drdrill.reporting.files import write_atomic
from pytest_drdrill.results import Verdict

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from pytest_drdrill.reporting.writer import RunResults
    from pytest_drdrill.results import (
        DrillResult,
        FaultRecord,
        FunctionResult,
        LagSample,
        NodeResources,
        Phase,
        RoleSample,
        RpoResult,
        RtoResult,
        RunInfo,
        ServiceResult,
        ServiceTimeline,
        SplitBrainWatch,
        Target,
        TimelineSwitch,
    )
    from pytest_drdrill.timing import Anchor

#: Version of the ``drill.json`` layout; readers should refuse versions they do not know.
SCHEMA_VERSION = 1

#: File name of the report inside the report directory.
FILENAME = "drill.json"

_SCHEMA_RESOURCE = "drill.schema.json"


def load_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) that ``drill.json`` follows.

    .. versionadded:: 0.1
    """
    resource = importlib.resources.files("pytest_drdrill.reporting") / _SCHEMA_RESOURCE
    text = resource.read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def drill_to_dict(drill: DrillResult, anchor: Anchor) -> dict[str, Any]:
    """Convert one drill's result into its ``drill.json`` entry.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       Adds ``services``, ``functions``, ``lag`` and ``notes``.
    .. versionchanged:: 0.5
       Adds ``split_brain``: the watcher's polls per server and every overlap.
    .. versionchanged:: 0.6
       Adds ``roles`` and ``timeline_switches``.

    :param drill: the drill's result.
    :param anchor: the run's anchor, to turn monotonic stamps into wall time.
    :returns: a JSON-serialisable dict matching the schema's ``drill`` definition.
    """
    return {
        "name": drill.name,
        "scenario": drill.scenario,
        "backend": drill.backend,
        "cadence": drill.cadence,
        "negative_control": drill.negative_control,
        "started_at": anchor.isoformat(drill.started_at),
        "ended_at": anchor.isoformat(drill.ended_at),
        "duration_seconds": drill.ended_at - drill.started_at,
        "fault": None if drill.fault is None else _fault(drill.fault, drill, anchor),
        "faults": [_fault(fault, drill, anchor) for fault in drill.faults],
        "phases": [_phase(phase, drill, anchor) for phase in drill.phases],
        "verdict": drill.verdict.value,
        "reason": drill.reason,
        "rto_seconds": None if drill.rto is None else drill.rto.seconds,
        "rto": None if drill.rto is None else _rto(drill.rto, anchor),
        "rpo": None if drill.rpo is None else _rpo(drill.rpo),
        "target": None if drill.target is None else _target(drill.target),
        "acknowledged_writes": drill.acknowledged_writes,
        "services": [_service(service, anchor) for service in drill.services],
        "functions": [_function(function, anchor) for function in drill.functions],
        "lag": [_lag(sample, drill, anchor) for sample in drill.lag],
        "notes": list(drill.notes),
        "timeline": _timeline(drill.timeline),
        "resources": _resources(drill.resources),
        "notifications": [_notification(n, drill) for n in drill.notifications],
        "expected_verdict": _verdict(drill.expected_verdict),
        "topology": drill.topology,
        "split_brain": _split_brain(drill.split_brain, drill, anchor),
        "roles": [_role(sample, drill, anchor) for sample in drill.roles],
        "timeline_switches": [_switch(s, drill, anchor) for s in drill.timeline_switches],
    }


def run_to_dict(run: RunInfo, drills: Sequence[DrillResult]) -> dict[str, Any]:
    """Build the whole ``drill.json`` document.

    .. versionadded:: 0.1

    :param run: facts about the run.
    :param drills: every drill's result, in the order they ran.
    :returns: a JSON-serialisable dict matching the schema.
    """
    counts = collections.Counter(drill.verdict for drill in drills)
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {
            "id": run.run_id,
            "started_at": run.anchor.isoformat(run.anchor.mono),
            "git_sha": run.git_sha,
            "versions": dict(run.versions),
            "backend": run.backend,
            "cadence": run.cadence,
        },
        "summary": {
            "total": len(drills),
            **{verdict.value: counts[verdict] for verdict in Verdict},
            "negative_controls": sum(drill.negative_control for drill in drills),
            "negative_controls_red": sum(
                drill.negative_control and drill.verdict is Verdict.FAIL for drill in drills
            ),
            "unexpected": sum(not drill.as_expected for drill in drills),
        },
        "drills": [drill_to_dict(drill, run.anchor) for drill in drills],
    }


def write_document(directory: Path, document: Mapping[str, Any]) -> Path:
    """Write an already built run document as ``directory/drill.json``, atomically.

    .. versionadded:: 0.3

    :raises ValueError: when a measurement is NaN or infinite, which JSON cannot hold.
    """
    text = json.dumps(document, indent=2, allow_nan=False)
    path = directory / FILENAME
    write_atomic(path, (text + "\n").encode("utf-8"))
    return path


class JsonWriter:
    """Writes ``drill.json``, first of all: it holds every measurement.

    .. versionadded:: 0.5
    """

    rank = 10

    def write(self, results: RunResults) -> list[tuple[str, Path]]:
        """Write ``results.document`` as ``drill.json``."""
        return [("json", write_document(results.directory, results.document))]


def _offset(mono: float | None, drill: DrillResult) -> float | None:
    return None if mono is None else mono - drill.started_at


def _iso(mono: float | None, anchor: Anchor) -> str | None:
    return None if mono is None else anchor.isoformat(mono)


def _fault(fault: FaultRecord, drill: DrillResult, anchor: Anchor) -> dict[str, Any]:
    return {
        "kind": fault.kind,
        "target": fault.target,
        "injected_at": anchor.isoformat(fault.injected_at),
        "healed_at": _iso(fault.healed_at, anchor),
        "injected_offset_seconds": fault.injected_at - drill.started_at,
        "healed_offset_seconds": _offset(fault.healed_at, drill),
    }


def _phase(phase: Phase, drill: DrillResult, anchor: Anchor) -> dict[str, Any]:
    return {
        "name": phase.name,
        "started_at": anchor.isoformat(phase.started),
        "ended_at": anchor.isoformat(phase.ended),
        "started_offset_seconds": phase.started - drill.started_at,
        "seconds": phase.seconds,
        "ok": phase.ok,
        "detail": phase.detail,
    }


def _rto(rto: RtoResult, anchor: Anchor) -> dict[str, Any]:
    return {
        "seconds": rto.seconds,
        "effect_seen": rto.effect_seen,
        "outage_started_at": _iso(rto.outage_started, anchor),
        "recovered_at": _iso(rto.recovered_at, anchor),
    }


def _rpo(rpo: RpoResult) -> dict[str, Any]:
    return {
        "lost_writes": rpo.lost_writes,
        "lost_ids": list(rpo.lost_ids),
        "window_seconds": rpo.window_seconds,
        "unacknowledged_present": rpo.unacknowledged_present,
    }


def _service(service: ServiceResult, anchor: Anchor) -> dict[str, Any]:
    rpo = None
    if service.rpo is not None:
        rpo = {**_rpo(service.rpo), "lost_ages_seconds": list(service.lost_ages)}
    return {
        "service": service.service,
        "verdict": service.verdict.value,
        "reason": service.reason,
        "acknowledged_writes": service.acknowledged_writes,
        "rto": None if service.rto is None else _rto(service.rto, anchor),
        "rpo": rpo,
    }


def _function(function: FunctionResult, anchor: Anchor) -> dict[str, Any]:
    return {
        "function": function.function,
        "services": list(function.services),
        "not_exercised": list(function.not_exercised),
        "verdict": function.verdict.value,
        "reason": function.reason,
        "rto": None if function.rto is None else _rto(function.rto, anchor),
        "rpo": None if function.rpo is None else _rpo(function.rpo),
        "target": None if function.target is None else _target(function.target),
        "probes": list(function.probes),
    }


def _lag(sample: LagSample, drill: DrillResult, anchor: Anchor) -> dict[str, Any]:
    return {
        "offset_seconds": sample.at - drill.started_at,
        "at": anchor.isoformat(sample.at),
        "service": sample.service,
        "node": sample.node,
        "bytes": sample.bytes,
        "seconds": sample.seconds,
        "healthy": sample.healthy,
    }


def _role(sample: RoleSample, drill: DrillResult, anchor: Anchor) -> dict[str, Any]:
    return {
        "offset_seconds": sample.at - drill.started_at,
        "at": anchor.isoformat(sample.at),
        "node": sample.node,
        "role": sample.role,
        "state": sample.state,
        "timeline": sample.timeline,
        "lag_bytes": sample.lag_bytes,
        "in_recovery": sample.in_recovery,
        "source": sample.source,
    }


def _switch(switch: TimelineSwitch, drill: DrillResult, anchor: Anchor) -> dict[str, Any]:
    return {
        "timeline": switch.timeline,
        "lsn": switch.lsn,
        "offset_seconds": _offset(switch.at, drill),
        "at": _iso(switch.at, anchor),
        "reason": switch.reason,
        "new_leader": switch.new_leader,
    }


def _verdict(verdict: Verdict | None) -> str | None:
    return None if verdict is None else verdict.value


def _timeline(timeline: Sequence[ServiceTimeline]) -> dict[str, Any] | None:
    if not timeline:
        return None
    return {
        "bucket_seconds": timeline[0].bucket,
        "services": {
            t.service: {
                "acknowledged": list(t.acknowledged),
                "failed": list(t.failed),
                "indeterminate": list(t.indeterminate),
                "probes_ok": list(t.probes_ok),
                "probes_failed": list(t.probes_failed),
            }
            for t in timeline
        },
    }


def _resources(resources: Sequence[NodeResources]) -> dict[str, Any] | None:
    if not resources:
        return None
    return {
        "processes": sum(r.processes for r in resources),
        "pss_bytes": sum(r.pss_bytes for r in resources),
        "nodes": [
            {"node": r.node, "processes": r.processes, "pss_bytes": r.pss_bytes} for r in resources
        ],
    }


def _notification(record: Any, drill: DrillResult) -> dict[str, Any]:
    from pytest_drdrill.notify import to_dict

    return to_dict(record, drill.started_at)


def _target(target: Target) -> dict[str, Any]:
    return {
        "kind": target.kind,
        "name": target.name,
        "rto_target_seconds": target.rto_target,
        "rto_max_seconds": target.rto_max,
        "rpo_target_seconds": target.rpo_target,
        "rpo_max_seconds": target.rpo_max,
        "max_lost_writes": target.max_lost_writes,
    }


def _split_brain(
    watch: SplitBrainWatch | None, drill: DrillResult, anchor: Anchor
) -> dict[str, Any] | None:
    if watch is None:
        return None
    fault_at = drill.fault.injected_at if drill.fault is not None else None
    return {
        "servers": [
            {"node": s.node, "polls": s.polls, "answered": s.answered} for s in watch.servers
        ],
        "overlaps": [
            {
                "first": o.first,
                "second": o.second,
                "started_at": anchor.isoformat(o.start),
                "ended_at": anchor.isoformat(o.end),
                "started_offset_seconds": o.start - drill.started_at,
                "ended_offset_seconds": o.end - drill.started_at,
                "after_fault_seconds": None if fault_at is None else o.start - fault_at,
                "seconds": o.end - o.start,
                "first_answers": o.first_answers,
                "second_answers": o.second_answers,
            }
            for o in watch.overlaps
        ],
        "error": watch.error,
        "unwatched": list(watch.unwatched),
    }
