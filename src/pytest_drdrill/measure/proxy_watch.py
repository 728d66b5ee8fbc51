"""The fault proxy, watched while a drill runs: its death is noticed at once.

Every path of the topology runs through the fault proxy. Should it die mid-drill, every
client sees an outage that no recovery can end, and a drill that went on would measure
the proxy's death as the system's RTO. :class:`ProxyWatch` asks the proxy's API for its
version every :attr:`interval` seconds; two answers missed in a row mark it dead, with
the moment of the first miss, and call ``on_death`` (the drill heals its faults and stops
waiting for a recovery that cannot come).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from pytest_drdrill import timing
from pytest_drdrill.proxy import ProxyClient

if TYPE_CHECKING:
    from collections.abc import Callable


class ProxyWatch:
    """Polls the fault proxy's API from a thread of its own.

    :param base_url: the proxy's API URL.
    :param on_death: called once, from the watching thread, when the proxy is found dead.
    :param interval: seconds between polls.
    :param misses: polls in a row that must fail.

    .. versionadded:: 0.7
    """

    def __init__(
        self,
        base_url: str,
        *,
        on_death: Callable[[], object] | None = None,
        interval: float = 0.2,
        misses: int = 2,
    ) -> None:
        self.base_url = base_url
        self.client = ProxyClient(base_url, timeout=max(interval, 0.5))
        self.on_death = on_death
        self.interval = interval
        self.misses = misses
        #: Monotonic stamp of the first missed answer of the run that marked it dead.
        self.died_at: float | None = None
        self.error = ""
        self.dead = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drdrill-proxy-watch", daemon=True)

    def start(self) -> ProxyWatch:
        """Start watching."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        missed, first = 0, 0.0
        while not self._stop.is_set():
            try:
                self.client.version()
                missed = 0
            except Exception as exc:  # refused, timed out, garbled: not answering
                if missed == 0:
                    first = timing.monotonic()
                missed += 1
                self.error = f"{type(exc).__name__}: {exc}"
                if missed >= self.misses:
                    self.died_at = first
                    self.dead.set()
                    if self.on_death is not None:
                        self.on_death()
                    return
            self._stop.wait(self.interval)
