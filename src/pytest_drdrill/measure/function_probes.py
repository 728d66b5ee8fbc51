"""Clients of a team's business functions: the targets file's ``probes``, sent during a drill.

Each business function with probes gets one client thread. Every ``probe_interval`` it
sends the function's probes in turn (an HTTP request to the application, an SQL query on
its database, a command) and records one probe in the function's own history
(``function:<name>``): ok only when every probe of the round answered as the file says.
The function's RTO is then measured from that history alone, as a user of the function
would see it (:func:`measure_probe_rto`), whatever the stores underneath say.
"""

from __future__ import annotations

import os
import subprocess
import threading
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.measure.history import ProbeOp
from pytest_drdrill.results import RtoResult

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pytest_drdrill.measure.history import History
    from pytest_drdrill.record import DrillRecord
    from pytest_drdrill.targets import Targets
    from pytest_drdrill.targets.model import BusinessFunction, FunctionProbe


def history_name(function: str) -> str:
    """The drill record's history that holds ``function``'s probes."""
    return f"function:{function}"


def send(probe: FunctionProbe) -> str | None:
    """Send one probe; ``None`` when it answered as expected, else what went wrong.

    The probe's ``timeout`` is a deadline on the client's side for the whole round trip.
    A client library's own timeouts do not cover everything: a PostgreSQL server frozen
    after it accepted the connection leaves the query waiting with no timer at all, and
    a round that waits out the freeze and then succeeds would hide the outage. A probe
    past its deadline is recorded as failed; its thread is left to finish on its own.
    """
    answer: list[str | None] = []
    worker = threading.Thread(
        target=lambda: answer.append(_send(probe)), name=f"drdrill-probe-{probe.name}", daemon=True
    )
    worker.start()
    worker.join(probe.timeout + DEADLINE_GRACE)
    if not answer:
        return f"no answer within {probe.timeout:g}s"
    return answer[0]


#: Seconds past a probe's timeout before the round counts as unanswered: the client
#: library's own timeout, when it works, reports first and names the cause.
DEADLINE_GRACE = 0.25


def _send(probe: FunctionProbe) -> str | None:
    settings = probe.settings
    try:
        if probe.kind == "http":
            return _http(settings, probe.timeout)
        if probe.kind == "sql":
            return _sql(settings, probe.timeout)
        done = subprocess.run(
            settings["argv"], capture_output=True, timeout=probe.timeout, check=False
        )
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip()[-200:]
            return f"exit status {done.returncode}" + (f": {tail}" if tail else "")
        return None
    except subprocess.TimeoutExpired:
        return f"no answer within {probe.timeout:g}s"
    except Exception as exc:  # any client library's error is a failed request, recorded
        return f"{type(exc).__name__}: {exc}"


def _http(settings: Mapping[str, object], timeout: float) -> str | None:
    body = settings.get("body")
    request = urllib.request.Request(  # noqa: S310 - the team's own URL, from its file
        str(settings["url"]),
        data=None if body is None else str(body).encode(),
        method=str(settings["method"]),
        headers=dict(settings.get("headers") or {}),  # type: ignore[call-overload]
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            status = int(reply.status)
            reply.read()
    except urllib.error.HTTPError as exc:
        exc.close()
        status = exc.code
    if status != settings["status"]:
        return f"HTTP {status}, expected {settings['status']}"
    return None


def _sql(settings: Mapping[str, object], timeout: float) -> str | None:
    import psycopg

    variable = str(settings["dsn_env"])
    dsn = os.environ.get(variable)
    if not dsn:
        return f"environment variable {variable} (dsn_env) is not set"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=max(1, round(timeout))) as conn:
        conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
        row = conn.execute(str(settings["query"])).fetchone()
    expect = settings.get("expect")
    if expect is not None and (row is None or str(row[0]) != str(expect)):
        return f"returned {None if row is None else row[0]!r}, expected {expect!r}"
    return None


class FunctionClient:
    """Sends one business function's probes every interval and records each round.

    .. versionadded:: 0.7
    """

    def __init__(self, function: BusinessFunction, history: History) -> None:
        self.function = function
        self.history = history
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"drdrill-function-{function.name}", daemon=True
        )

    def start(self) -> FunctionClient:
        """Start sending."""
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            invoked = timing.monotonic()
            problems = [
                f"{probe.name}: {problem}"
                for probe in self.function.probes
                if (problem := send(probe)) is not None
            ]
            self.history.record_probe(
                ProbeOp(invoked, timing.monotonic(), not problems, "; ".join(problems))
            )
            self._stop.wait(max(0.0, invoked + self.function.probe_interval - timing.monotonic()))

    def stop(self) -> None:
        """Stop after the round in flight (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(p.timeout for p in self.function.probes) * 2 + 5)


def start_clients(targets: Targets | None, record: DrillRecord) -> list[FunctionClient]:
    """One running client per business function that declares probes."""
    if targets is None:
        return []
    return [
        FunctionClient(function, record.history_of(history_name(name))).start()
        for name, function in targets.business_functions.items()
        if function.probes
    ]


def stop_clients(clients: Iterable[FunctionClient]) -> None:
    """Stop every client."""
    for client in clients:
        client.stop()


def measure_probe_rto(history: History, fault_at: float) -> RtoResult:
    """A function's RTO from its probes alone: first failure to first success after the last.

    Like :func:`~pytest_drdrill.measure.analysis.measure_rto`, a round already in flight
    when the fault hit counts, and a brief success inside a flapping outage does not end it.
    """
    probes = history.probes()
    failed = [op for op in probes if not op.ok and op.completed >= fault_at]
    if not failed:
        return RtoResult(seconds=None, outage_started=None, recovered_at=None, effect_seen=False)
    started = max(fault_at, min(op.invoked for op in failed))
    last = max(op.completed for op in failed)
    recovered = min((op.completed for op in probes if op.ok and op.invoked >= last), default=None)
    return RtoResult(
        seconds=None if recovered is None else recovered - fault_at,
        outage_started=started,
        recovered_at=recovered,
        effect_seen=True,
    )


def unreachable_before(history: History, fault_at: float) -> str | None:
    """Why the function's probes prove nothing, or ``None``: they must succeed before the fault."""
    before = [op for op in history.probes() if op.completed < fault_at]
    if any(op.ok for op in before):
        return None
    if not before:
        return "its probes sent no request before the fault"
    return f"its probes never succeeded before the fault (last: {before[-1].error})"
