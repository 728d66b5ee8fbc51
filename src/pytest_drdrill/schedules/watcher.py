"""Where fault schedules have always imported the server watcher from.

The watcher now lives in :mod:`pytest_drdrill.measure.watcher`, below the drills, because
every drill runs one; this name stays so code written against 0.4 keeps working.

.. versionchanged:: 0.5 a re-export of :mod:`pytest_drdrill.measure.watcher`.
"""

from __future__ import annotations

from pytest_drdrill.measure.watcher import POLL, ServerWatcher

__all__ = ["POLL", "ServerWatcher"]
