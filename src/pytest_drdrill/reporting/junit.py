"""The drill-level JUnit report, ``drill-junit.xml``, for CI systems.

One testcase per drill, so a game-day run outside pytest still shows up in a CI test
view. A missed target is a failure; an inconclusive drill is an error, because a fault
that never took effect proves nothing and must not read as a pass.

junit-xml 1.9 writes properties only on the test suite, so the per-drill RTO/RPO
properties are added to each ``<testcase>`` after rendering.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from pytest_drdrill.reporting.files import write_atomic
from pytest_drdrill.results import Verdict

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from pytest_drdrill.reporting.writer import RunResults
    from pytest_drdrill.results import DrillResult, RtoResult, RunInfo

#: File name of the report inside the report directory.
FILENAME = "drill-junit.xml"

#: Name of the single test suite.
SUITE_NAME = "drdrill"

# XML 1.0 forbids most control characters even when escaped; a stray one in a
# backend's error text would make the whole report unparseable.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def write_junit(directory: Path, run: RunInfo, drills: Sequence[DrillResult]) -> Path:
    """Write ``directory/drill-junit.xml`` atomically.

    The suite carries the run's properties (``run_id``, ``backend``, ``cadence``,
    ``git_sha``). Each testcase is named after its drill, classed by its scenario, and
    carries the properties of :func:`drill_properties`. ``fail`` becomes a
    ``<failure type="TargetMissed">``, ``inconclusive`` an ``<error
    type="DrillInconclusive">``; ``warn`` passes with its reason in ``<system-out>``.

    .. versionadded:: 0.1

    :param directory: the run's report directory; created when missing.
    :param run: facts about the run.
    :param drills: every drill's result, in the order they ran.
    :returns: the path written.
    """
    # junit-xml is imported here so that loading the plugin stays cheap.
    from junit_xml import TestCase, TestSuite, to_xml_report_string

    cases = []
    for drill in drills:
        case = TestCase(
            name=drill.name,
            classname=drill.scenario,
            elapsed_sec=_duration(drill),
            stdout=_clean(_summary(drill)),
        )
        # junit-xml silently drops a failure or error whose message and output are both
        # empty, which would turn a failed drill into a pass: never pass it an empty one.
        message = _clean(drill.reason) or f"drill verdict: {drill.verdict.value}"
        if drill.negative_control and drill.verdict is not Verdict.ABORTED:
            # Red is what a negative control must show; only anything else is a failure.
            if drill.verdict is not Verdict.FAIL:
                case.add_failure_info(
                    message=f"negative control did not go red: {message}",
                    failure_type="NegativeControlNotRed",
                )
        elif drill.verdict is Verdict.FAIL:
            case.add_failure_info(message=message, failure_type="TargetMissed")
        elif drill.verdict is Verdict.INCONCLUSIVE:
            case.add_error_info(message=message, error_type="DrillInconclusive")
        elif drill.verdict is Verdict.ABORTED:
            case.add_error_info(message=message, error_type="DrillAborted")
        cases.append(case)

    suite = TestSuite(
        SUITE_NAME,
        cases,
        id=_clean(run.run_id),
        timestamp=run.anchor.isoformat(run.anchor.mono),
        properties={
            "run_id": _clean(run.run_id),
            "backend": _clean(run.backend),
            "cadence": _clean(run.cadence or ""),
            "git_sha": _clean(run.git_sha or ""),
        },
    )
    root = ET.fromstring(to_xml_report_string([suite], prettyprint=False))
    testcases = root.findall("./testsuite/testcase")
    for element, drill in zip(testcases, drills, strict=True):
        # junit-xml omits time="" for a zero duration; write it always so every
        # testcase reads the same.
        element.set("time", f"{_duration(drill):.6f}")
        properties = ET.Element("properties")
        for name, value in drill_properties(drill).items():
            ET.SubElement(properties, "property", name=name, value=_clean(value))
        # The JUnit schema pytest and Jenkins follow puts <properties> first in a testcase.
        element.insert(0, properties)
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
    path = directory / FILENAME
    write_atomic(path, data)
    return path


class JunitWriter:
    """Writes ``drill-junit.xml`` for CI systems.

    .. versionadded:: 0.5
    """

    rank = 20

    def write(self, results: RunResults) -> list[tuple[str, Path]]:
        """Write the drill JUnit file of ``results``."""
        return [("junit", write_junit(results.directory, results.run, results.drills))]


def drill_properties(drill: DrillResult) -> dict[str, str]:
    """Return the properties written on a drill's testcase.

    The drill's own names are always present so CI plots find a stable set; a value
    that was not measured or not judged is the empty string. Numbers are plain decimals.
    Each measured service adds
    ``drdrill.<service>.verdict``, ``drdrill.<service>.rto_seconds`` and
    ``drdrill.<service>.lost_writes``; each judged business function adds
    ``drdrill.function.<name>.verdict`` and ``drdrill.function.<name>.rto_seconds``. The
    ``drdrill.`` prefix keeps them apart from the drill's names and from properties other
    tools add.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       Adds the per-service and per-function properties.
    .. versionchanged:: 0.3
       Adds ``expected_verdict`` (``fail`` for a negative control).

    :param drill: the drill's result.
    :returns: property name to value: ``verdict``, ``rto_seconds``, ``rpo_lost_writes``,
        ``rpo_window_seconds``, ``rpo_unacknowledged_present``, ``acknowledged_writes``,
        ``target``, ``target_kind``, ``rto_target_seconds``, ``rto_max_seconds``,
        ``rpo_target_seconds``, ``rpo_max_seconds``, ``max_lost_writes``,
        ``negative_control``, ``expected_verdict``, then the per-service and per-function
        ones.
    """
    rto, rpo, target = drill.rto, drill.rpo, drill.target
    properties = {
        "verdict": drill.verdict.value,
        "rto_seconds": _number(None if rto is None else rto.seconds),
        "rpo_lost_writes": _number(None if rpo is None else rpo.lost_writes),
        "rpo_window_seconds": _number(None if rpo is None else rpo.window_seconds),
        "rpo_unacknowledged_present": _number(None if rpo is None else rpo.unacknowledged_present),
        "acknowledged_writes": _number(drill.acknowledged_writes),
        "target": "" if target is None else target.name,
        "target_kind": "" if target is None else target.kind,
        "rto_target_seconds": _number(None if target is None else target.rto_target),
        "rto_max_seconds": _number(None if target is None else target.rto_max),
        "rpo_target_seconds": _number(None if target is None else target.rpo_target),
        "rpo_max_seconds": _number(None if target is None else target.rpo_max),
        "max_lost_writes": _number(None if target is None else target.max_lost_writes),
        "negative_control": "true" if drill.negative_control else "false",
        "expected_verdict": "" if drill.expected_verdict is None else drill.expected_verdict.value,
    }
    for service in drill.services:
        prefix = f"drdrill.{service.service}"
        properties[f"{prefix}.verdict"] = service.verdict.value
        properties[f"{prefix}.rto_seconds"] = _number(_seconds(service.rto))
        properties[f"{prefix}.lost_writes"] = _number(
            None if service.rpo is None else service.rpo.lost_writes
        )
    for function in drill.functions:
        prefix = f"drdrill.function.{function.function}"
        properties[f"{prefix}.verdict"] = function.verdict.value
        properties[f"{prefix}.rto_seconds"] = _number(_seconds(function.rto))
    return properties


def _seconds(rto: RtoResult | None) -> float | None:
    return None if rto is None else rto.seconds


def _duration(drill: DrillResult) -> float:
    return max(0.0, drill.ended_at - drill.started_at)


def _number(value: int | float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    # Microseconds are finer than any clock a drill reads; rounding keeps float noise
    # such as 0.28700000000000003 out of CI dashboards.
    return repr(round(value, 6))


def _clean(text: str) -> str:
    return _ILLEGAL_XML.sub("", text)


def _summary(drill: DrillResult) -> str:
    lines = [f"verdict: {drill.verdict.value}"]
    if drill.reason:
        lines.append(f"reason: {drill.reason}")
    if drill.rto is not None:
        rto = "not recovered" if drill.rto.seconds is None else f"{drill.rto.seconds:.3f} s"
        effect = "" if drill.rto.effect_seen else " (no outage seen by the client)"
        lines.append(f"rto: {rto}{effect}")
    if drill.rpo is not None:
        lines.append(
            f"rpo: {drill.rpo.lost_writes} acknowledged write(s) lost, window "
            f"{drill.rpo.window_seconds:.3f} s, {drill.rpo.unacknowledged_present} "
            "unacknowledged write(s) present"
        )
    watch = drill.split_brain
    if watch is not None:
        polls = ", ".join(f"{s.node} {s.polls} polls" for s in watch.servers)
        lines.append(
            f"split-brain watcher: {polls or 'no server asked'}; "
            f"{len(watch.overlaps)} time(s) two servers were writable at once"
            + (f"; crashed: {watch.error}" if watch.error else "")
        )
    for phase in drill.phases:
        status = "ok" if phase.ok else "FAILED"
        detail = f" ({phase.detail})" if phase.detail else ""
        lines.append(f"phase {phase.name}: {phase.seconds:.3f} s {status}{detail}")
    return "\n".join(lines)
