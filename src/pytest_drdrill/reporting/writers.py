"""The report writers every run's bundle is written by, in the order they run.

A new report format is one module with one :class:`~pytest_drdrill.reporting.writer.ReportWriter`,
listed here. The reporter imports this module only at the end of a run, so that loading
the plugin does not load jinja2 and the plotting code.

.. versionadded:: 0.5
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.reporting.drill_json import JsonWriter
from pytest_drdrill.reporting.evidence import NotificationsWriter
from pytest_drdrill.reporting.html import HtmlWriter
from pytest_drdrill.reporting.junit import JunitWriter
from pytest_drdrill.reporting.mtd import MtdWriter
from pytest_drdrill.reporting.prometheus import PrometheusWriter
from pytest_drdrill.reporting.run_history import HistoryWriter

if TYPE_CHECKING:
    from pytest_drdrill.reporting.writer import ReportWriter


def default_writers(
    *, pushgateway: str | None = None, otlp_endpoint: str | None = None
) -> list[ReportWriter]:
    """A fresh writer of each format the bundle always has.

    .. versionchanged:: 0.6
       Adds the Prometheus figures, pushed to ``pushgateway`` when one is given.
    .. versionchanged:: 0.7
       Adds the OpenTelemetry export when ``otlp_endpoint`` is given.
    """
    extra: list[ReportWriter] = []
    if otlp_endpoint is not None:
        from pytest_drdrill.reporting.otel import OtelWriter

        extra.append(OtelWriter(otlp_endpoint))
    return [
        JsonWriter(),
        JunitWriter(),
        HtmlWriter(),
        MtdWriter(),
        NotificationsWriter(),
        HistoryWriter(),
        PrometheusWriter(pushgateway),
        *extra,
    ]
