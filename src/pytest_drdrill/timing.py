"""The one place pytest-drdrill reads clocks.

Durations (RTO, phase lengths, history timestamps) come from
:func:`monotonic`, a ``perf_counter`` that never jumps; wall-clock time is read
only to stamp reports. Tests replace both through :class:`MockClock`, in the
manner of pytest's own ``_pytest.timing``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time as _time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

monotonic = _time.perf_counter
wall = _time.time
sleep = _time.sleep


@dataclasses.dataclass(frozen=True)
class Anchor:
    """A simultaneous reading of both clocks, to turn monotonic stamps into wall time.

    :param mono: :func:`monotonic` at the reading.
    :param wall: :func:`wall` at the reading (seconds since the epoch).
    """

    mono: float
    wall: float

    def to_wall(self, mono: float) -> float:
        """Return the epoch time of a :func:`monotonic` stamp.

        :param mono: a stamp taken with :func:`monotonic` in this process.
        :returns: seconds since the epoch.
        """
        return self.wall + (mono - self.mono)

    def isoformat(self, mono: float) -> str:
        """Return a :func:`monotonic` stamp as an ISO 8601 UTC string with microseconds."""
        return _dt.datetime.fromtimestamp(self.to_wall(mono), tz=_dt.UTC).isoformat(
            timespec="microseconds"
        )


def anchor() -> Anchor:
    """Read both clocks at (nearly) the same instant."""
    return Anchor(mono=monotonic(), wall=wall())


@dataclasses.dataclass
class MockClock:
    """A clock for tests: time moves only when :meth:`sleep` or :meth:`advance` is called.

    .. versionadded:: 0.1
    """

    now: float = 1_000.0
    epoch: float = 1_800_000_000.0

    def monotonic(self) -> float:
        """Return the mocked monotonic time."""
        return self.now

    def wall(self) -> float:
        """Return the mocked wall time."""
        return self.epoch + self.now

    def sleep(self, seconds: float) -> None:
        """Advance the mocked time instead of sleeping."""
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move the mocked time forward.

        :param seconds: how far; must not be negative.
        :raises ValueError: on a negative value.
        """
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds})")
        self.now += seconds

    def install(self, monkeypatch: pytest.MonkeyPatch) -> MockClock:
        """Patch this module's clock functions for the duration of a test."""
        import sys

        module = sys.modules[__name__]
        monkeypatch.setattr(module, "monotonic", self.monotonic)
        monkeypatch.setattr(module, "wall", self.wall)
        monkeypatch.setattr(module, "sleep", self.sleep)
        return self
