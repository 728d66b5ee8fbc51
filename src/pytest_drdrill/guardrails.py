"""Stop conditions: a drill that hurts more than its owners allowed is stopped and healed.

A drill declares its guardrails with the marker key ``guardrails=``::

    @pytest.mark.drdrill(..., guardrails={"max_outage": "2m", "max_error_rate": 0.5,
                                          "window": "10s", "functions": ["user_authentication"]})

- ``max_outage``: the longest a service's client may go without an acknowledged write
  once its writes fail (default: the tier's maximum acceptable RTO; ``None`` turns it off);
- ``max_error_rate`` over ``window``: the share of a service's writes that failed, over
  the last ``window`` seconds (default 10 s), may not stay above it;
- ``functions``: business functions whose probes (targets file) may not fail for a whole
  ``window``.

:class:`GuardrailWatch` reads the clients' own histories every 100 ms, as the drill's
measurement does. On a breach it heals every fault at once, records the reason, the moment
and how long healing took, and the drill's verdict becomes ``aborted``; the run goes on.
The kill switch (``python -m pytest_drdrill heal``, :mod:`pytest_drdrill.kill_switch`) ends a
drill the same way.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from pytest_drdrill import timing
from pytest_drdrill.durations import format_duration, parse_duration
from pytest_drdrill.measure.history import Outcome

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from pytest_drdrill.measure.history import History
    from pytest_drdrill.results import Target

#: Keys of the marker's ``guardrails=`` mapping.
KEYS = ("max_outage", "max_error_rate", "window", "functions")
#: Writes a window must hold before its error rate counts.
_MIN_WRITES = 5


@dataclasses.dataclass(frozen=True)
class Guardrails:
    """When a drill is stopped.

    :param max_outage: seconds a service may go without an acknowledged write once its
        writes fail; ``None``: not watched.
    :param max_error_rate: the share (0–1) of failed writes over :attr:`window`;
        ``None``: not watched.
    :param window: seconds the error rate and the functions' probes are judged over.
    :param functions: business functions whose probes may not fail a whole window.

    .. versionadded:: 0.7
    """

    max_outage: float | None = None
    max_error_rate: float | None = None
    window: float = 10.0
    functions: tuple[str, ...] = ()

    def describe(self) -> str:
        """The guardrails in a line, for the record and the dry run."""
        parts = []
        if self.max_outage is not None:
            parts.append(f"outage over {format_duration(self.max_outage)}")
        if self.max_error_rate is not None:
            window = format_duration(self.window)
            parts.append(f"write error rate over {self.max_error_rate:.0%} for {window}")
        parts += [f"{f} failing for {format_duration(self.window)}" for f in self.functions]
        return "abort on " + ", ".join(parts) if parts else "no guardrail"


def parse(
    where: str, value: object, target: Target | None, functions: Sequence[str] | None
) -> Guardrails:
    """The marker's ``guardrails=`` value, checked; defaults when ``None``.

    :param functions: the targets file's business functions, to check names against;
        ``None`` when no targets are loaded (names are then left unchecked).
    :raises ValueError: naming the key and what to write instead.
    """
    default_outage = None if target is None else target.rto_max
    if value is None:
        return Guardrails(max_outage=default_outage)
    if not isinstance(value, dict):
        raise ValueError(
            f"{where}: guardrails={value!r}; give a dict such as "
            "{'max_outage': '2m', 'max_error_rate': 0.5, 'window': '10s'}"
        )
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise ValueError(f"{where}: guardrails key(s) {unknown}; valid: {', '.join(KEYS)}")

    def seconds(key: str, default: float | None) -> float | None:
        if key not in value:
            return default
        if value[key] is None:
            return None
        try:
            parsed = parse_duration(value[key])
        except ValueError as exc:
            raise ValueError(f"{where}: guardrails {key}: {exc}") from None
        if parsed <= 0:
            raise ValueError(f"{where}: guardrails {key}={value[key]!r} must be above zero")
        return parsed

    rate: Any = value.get("max_error_rate")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1
    ):
        raise ValueError(
            f"{where}: guardrails max_error_rate={rate!r}; give a share from 0 to below 1 "
            "(0.5: abort when over half the writes fail for the window)"
        )
    named = value.get("functions", ())
    if not isinstance(named, list | tuple) or not all(isinstance(n, str) for n in named):
        raise ValueError(f"{where}: guardrails functions={named!r}; give a list of names")
    missing = [] if functions is None else [n for n in named if n not in functions]
    if missing:
        raise ValueError(
            f"{where}: guardrails functions {missing} are not business functions of the "
            f"targets file; known: {', '.join(functions or ()) or 'none'}"
        )
    window = seconds("window", 10.0)
    return Guardrails(
        max_outage=seconds("max_outage", default_outage),
        max_error_rate=None if rate is None else float(rate),
        window=10.0 if window is None else window,
        functions=tuple(named),
    )


@dataclasses.dataclass(frozen=True)
class Breach:
    """Why and when a drill was stopped.

    :param reason: what was breached, in words.
    :param at: :func:`pytest_drdrill.timing.monotonic` stamp of the breach.
    :param healed_seconds: from the breach until every fault was healed.
    """

    reason: str
    at: float
    healed_seconds: float


def _outage(history: History, now: float) -> float | None:
    """Seconds since the last acknowledged write, when a write failed after it."""
    last_ok = history.last_acknowledged()
    if last_ok is None:
        return None
    recent = history.recent_writes(50)
    if not any(w.outcome is not Outcome.OK and w.completed > last_ok for w in recent):
        return None
    return now - last_ok


def _error_rate(history: History, now: float, window: float) -> float | None:
    recent = [w for w in history.recent_writes(2000) if w.completed >= now - window]
    if len(recent) < _MIN_WRITES or recent[0].completed > now - window + 0.5:
        return None  # too few writes, or the window is not yet covered
    return sum(1 for w in recent if w.outcome is not Outcome.OK) / len(recent)


def _function_down(history: History, now: float, window: float) -> bool:
    probes = history.probes()
    recent = [p for p in probes if p.completed >= now - window]
    covered = bool(probes) and probes[0].completed <= now - window
    return covered and len(recent) >= 2 and not any(p.ok for p in recent)


class GuardrailWatch:
    """Watches the clients' histories against :class:`Guardrails` from its own thread.

    :param services: each service's write history.
    :param functions: each watched function's probe history.
    :param on_breach: called once with the reason; returns when every fault is healed.
    :param kill_switch: returns a reason when the kill switch was thrown, else ``None``.

    .. versionadded:: 0.7
    """

    def __init__(
        self,
        guardrails: Guardrails,
        services: Mapping[str, History],
        functions: Mapping[str, History],
        *,
        on_breach: Callable[[str], object],
        kill_switch: Callable[[], str | None] | None = None,
        interval: float = 0.1,
    ) -> None:
        self.guardrails = guardrails
        self.services = services
        self.functions = functions
        self.on_breach = on_breach
        self.kill_switch = kill_switch
        self.interval = interval
        self.breach: Breach | None = None
        self.tripped = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drdrill-guardrails", daemon=True)

    def start(self) -> GuardrailWatch:
        """Start watching."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def check(self) -> str | None:
        """The first guardrail breached now, in words; ``None`` when all hold."""
        if self.kill_switch is not None:
            thrown = self.kill_switch()
            if thrown is not None:
                return thrown
        now = timing.monotonic()
        rails = self.guardrails
        for service, history in self.services.items():
            outage = _outage(history, now)
            if rails.max_outage is not None and outage is not None and outage > rails.max_outage:
                return (
                    f"guardrail max_outage: {service} has had no acknowledged write for "
                    f"{format_duration(outage)}, over {format_duration(rails.max_outage)}"
                )
            rate = _error_rate(history, now, rails.window)
            limit = rails.max_error_rate
            if limit is not None and rate is not None and rate > limit:
                return (
                    f"guardrail max_error_rate: {rate:.0%} of {service}'s writes failed over the "
                    f"last {format_duration(rails.window)}, over {rails.max_error_rate:.0%}"
                )
        for function in rails.functions:
            probed = self.functions.get(function)
            if probed is not None and _function_down(probed, now, rails.window):
                return (
                    f"guardrail functions: every probe of {function} failed for "
                    f"{format_duration(rails.window)}"
                )
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            reason = self.check()
            if reason is not None:
                started = at = timing.monotonic()
                self.tripped.set()
                self.on_breach(reason)
                self.breach = Breach(reason, at, timing.monotonic() - started)
                return
            self._stop.wait(self.interval)
