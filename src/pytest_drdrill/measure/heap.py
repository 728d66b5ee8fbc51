"""The test process's heap kept out of the garbage collector while measuring clients run.

The measuring clients live in the pytest process, beside everything the run has built. A
full collection of Python's cyclic garbage collector walks every tracked object with the
GIL held; in an xdist worker hundreds of tests old that is a few hundred milliseconds, and
over a second on a loaded machine. Every client loop stalls at once, client-side timeouts
fire although the services answered, and the drill reports an outage that never happened.

While at least one client runs, the objects that existed before it started are moved to
the collector's permanent generation (:func:`gc.freeze`), so a collection walks only what
the drill itself allocated. They are handed back when the last client stops. A process
that froze its heap itself is left as it is.

.. versionadded:: 0.8
"""

from __future__ import annotations

import gc
import threading

__all__ = ["frozen", "hold", "release"]

_lock = threading.Lock()
_holders = 0
_ours = False


def hold() -> None:
    """A client starts: freeze the heap unless another client already did."""
    global _holders, _ours
    with _lock:
        _holders += 1
        if _holders == 1 and gc.get_freeze_count() == 0:
            gc.freeze()
            _ours = True


def release() -> None:
    """A client stopped: unfreeze after the last one, if the freeze was ours."""
    global _holders, _ours
    with _lock:
        if _holders == 0:
            raise RuntimeError("heap.release() without hold()")
        _holders -= 1
        if _holders == 0 and _ours:
            gc.unfreeze()
            _ours = False


def frozen() -> bool:
    """Whether a running client holds the heap frozen."""
    with _lock:
        return _ours
