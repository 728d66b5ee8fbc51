"""``--drill-otlp-endpoint`` / ini ``drill_otlp_endpoint``: kept, refused when bad or unusable."""

from __future__ import annotations

import pytest

PRINTER = """
def test_print(drdrill_config):
    print()
    print(f"OTLP={drdrill_config.otlp_endpoint!r}")
"""


def test_none_by_default_and_kept_when_given(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_print=PRINTER)
    pytester.runpytest("-s").stdout.fnmatch_lines(["OTLP=None"])
    url = "http://127.0.0.1:4318/v1/traces"
    pytester.runpytest("-s", f"--drill-otlp-endpoint={url}").stdout.fnmatch_lines([f"OTLP='{url}'"])


@pytest.mark.parametrize("value", ["127.0.0.1:4318", "grpc://collector:4317", "http://"])
def test_not_a_url_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest(f"--drill-otlp-endpoint={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --drill-otlp-endpoint: '{value}' is not an OTLP/HTTP traces URL; give one "
            "such as http://127.0.0.1:4318/v1/traces (set with --drill-otlp-endpoint / ini "
            "drill_otlp_endpoint)"
        ]
    )


def test_without_the_sdk_the_error_names_the_extra(pytester: pytest.Pytester) -> None:
    """An environment without opentelemetry: the usage error says what to install."""
    # A None entry makes the import fail as if the package were absent.
    pytester.makeconftest("import sys\nsys.modules['opentelemetry.sdk.trace'] = None\n")
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest_subprocess("--drill-otlp-endpoint=http://127.0.0.1:4318/v1/traces")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --drill-otlp-endpoint asks for OpenTelemetry traces, but "
            "opentelemetry.sdk.trace is not installed; run pip install 'pytest-drdrill[otel]'"
        ]
    )


def test_spans_an_endpoint_refuses_are_counted_not_raised() -> None:
    """A collector that fails every export: the writer counts the spans, the run goes on."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from pytest_drdrill.reporting.otel import _watched

    class Refusing(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            raise ConnectionRefusedError("nothing listens")

    watched = _watched(Refusing())
    assert watched.export([object(), object()]) is SpanExportResult.FAILURE
    assert watched.failed == 2
