"""Each drill as an OpenTelemetry trace, exported over OTLP (``--drill-otlp-endpoint``).

Teams that follow incidents in a tracing backend (Jaeger, Tempo, Honeycomb) see a drill
as one trace: its root span covers the drill, with the verdict, the measured RTO and
the lost writes as attributes; each phase (detection, failover, promotion, restore's
fetch and replay, validation) and each fault (from injection to healing) is a child
span at the moment it happened. Spans are made after the drill from its record, with
their own start and end times, by opentelemetry-sdk; the OTLP/HTTP exporter sends them.
An endpoint that cannot be reached costs no other report: the failure is one of
:attr:`OtelWriter.problems`, shown at the end of the run.

The SDK is the ``otel`` extra (``pip install 'pytest-drdrill[otel]'``); the option's
check names it when it is missing.

.. versionadded:: 0.7
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from opentelemetry.sdk.trace.export import SpanExporter

    from pytest_drdrill.reporting.writer import RunResults
    from pytest_drdrill.results import DrillResult, RunInfo

#: What to install when the option is given without the SDK.
INSTALL_HINT = "pip install 'pytest-drdrill[otel]'"


def missing_sdk() -> str | None:
    """Why ``--drill-otlp-endpoint`` cannot work here, or ``None`` when it can."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        return f"{exc.name or 'opentelemetry'} is not installed; run {INSTALL_HINT}"
    return None


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def export_run(run: RunInfo, drills: Sequence[DrillResult], exporter: SpanExporter) -> int:
    """Turn every drill of ``run`` into a trace and hand its spans to ``exporter``.

    :returns: how many spans were made.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    resource = Resource.create(
        {
            "service.name": "pytest-drdrill",
            "drdrill.run_id": run.run_id,
            "drdrill.backend": run.backend,
            "drdrill.cadence": run.cadence or "",
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("pytest_drdrill")
    wall = run.anchor.to_wall
    made = 0
    try:
        for drill in drills:
            root = tracer.start_span(
                f"drill {drill.scenario}",
                start_time=_ns(wall(drill.started_at)),
                attributes=_drill_attributes(drill),
            )
            context = trace.set_span_in_context(root)
            for phase in drill.phases:
                span = tracer.start_span(
                    f"phase {phase.name}",
                    context=context,
                    start_time=_ns(wall(phase.started)),
                    attributes={"drdrill.ok": phase.ok, "drdrill.detail": phase.detail},
                )
                span.end(end_time=_ns(wall(max(phase.ended, phase.started))))
                made += 1
            for fault in drill.faults:
                healed = fault.healed_at if fault.healed_at is not None else drill.ended_at
                span = tracer.start_span(
                    f"fault {fault.kind}",
                    context=context,
                    start_time=_ns(wall(fault.injected_at)),
                    attributes={
                        "drdrill.fault.kind": fault.kind,
                        "drdrill.fault.target": fault.target,
                        "drdrill.fault.healed": fault.healed_at is not None,
                    },
                )
                span.end(end_time=_ns(wall(max(healed, fault.injected_at))))
                made += 1
            root.end(end_time=_ns(wall(max(drill.ended_at, drill.started_at))))
            made += 1
    finally:
        provider.shutdown()
    return made


def _drill_attributes(drill: DrillResult) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "drdrill.drill": drill.name,
        "drdrill.scenario": drill.scenario,
        "drdrill.cadence": drill.cadence,
        "drdrill.verdict": drill.verdict.value,
        "drdrill.reason": drill.reason,
        "drdrill.negative_control": drill.negative_control,
    }
    if drill.target is not None:
        attributes["drdrill.target.kind"] = drill.target.kind
        attributes["drdrill.target.name"] = drill.target.name
    if drill.rto is not None and drill.rto.seconds is not None:
        attributes["drdrill.rto_seconds"] = drill.rto.seconds
    if drill.rpo is not None:
        attributes["drdrill.lost_writes"] = drill.rpo.lost_writes
    return attributes


class OtelWriter:
    """Exports the run's drills as traces to an OTLP/HTTP endpoint.

    :param endpoint: the collector's traces URL (``http://host:4318/v1/traces``).

    .. versionadded:: 0.7
    """

    rank = 85

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        #: What could not be delivered, one message each; the reporter shows them.
        self.problems: list[str] = []

    def exporter(self) -> SpanExporter:
        """The OTLP/HTTP span exporter for :attr:`endpoint`."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=self.endpoint, timeout=10)

    def write(self, results: RunResults) -> list[tuple[str, Path]]:
        """Export every drill; nothing is written to the bundle."""
        exporter = _watched(self.exporter())
        export_run(results.run, results.drills, exporter)
        if exporter.failed:
            self.problems.append(
                f"OpenTelemetry: {exporter.failed} span(s) not accepted by {self.endpoint} "
                f"(--drill-otlp-endpoint); the run's other reports are written"
            )
        return []


def _watched(inner: SpanExporter) -> Any:
    """``inner`` wrapped to count the spans it did not accept (the SDK logs, never raises)."""
    from opentelemetry.sdk.trace.export import SpanExporter

    class Watched(SpanExporter):
        def __init__(self) -> None:
            self.inner = inner
            self.failed = 0

        def export(self, spans: Any) -> Any:
            from opentelemetry.sdk.trace.export import SpanExportResult

            try:
                result = self.inner.export(spans)
            except Exception:  # an exporter that raises is a failed delivery, not a failed run
                result = SpanExportResult.FAILURE
            if result is not SpanExportResult.SUCCESS:
                self.failed += len(spans)
            return result

        def shutdown(self) -> None:
            self.inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return bool(self.inner.force_flush(timeout_millis))

    return Watched()
