"""The kill switch: one command heals every fault of every drill running on this machine.

``python -m pytest_drdrill heal`` (from another terminal, or Chaos Toolkit's rollback)
throws it. Each running drill registers itself here while it runs (its pid, scenario and
fault proxy); throwing the switch

1. writes the switch file with the moment and the reason: every drill that started before
   it sees it within 100 ms (its guardrail watch), heals its own faults — toxics, cut
   paths, frozen processes, paused containers, detached networks — stops, and records
   ``aborted: kill switch``;
2. resets each registered fault proxy (Toxiproxy's ``POST /reset``: every toxic removed,
   every path enabled), so the network is whole even if a drill's process is stuck;
3. sends SIGCONT to every process a drill tagged as its own (``DRDRILL_OWNER``), so no
   server stays frozen.

A drill started after the switch was thrown is not affected.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_drdrill import timing

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Where running drills register and the switch is thrown; ``DRDRILL_KILL_SWITCH_DIR``
#: overrides it (tests use their own).
DIR_ENV = "DRDRILL_KILL_SWITCH_DIR"
SWITCH = "thrown.json"


def directory() -> Path:
    """The kill switch's directory, created world-writable (sticky) on first use."""
    path = Path(os.environ.get(DIR_ENV) or Path(tempfile.gettempdir()) / "drdrill-kill-switch")
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        try:
            path.chmod(0o1777)
        except OSError:
            pass  # someone else's: registering still works if it is writable
    return path


def register(scenario: str, proxy_url: str | None) -> Path:
    """Register a running drill; remove the returned file when it ends.

    Entries of drills whose process is gone (a SIGKILLed run) are removed on the way.
    """
    for stale in directory().glob("drill-*.json"):
        try:
            os.kill(int(stale.name.split("-")[1]), 0)
        except ProcessLookupError:
            stale.unlink(missing_ok=True)
        except (OSError, ValueError, IndexError):
            continue
    entry = directory() / f"drill-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
    entry.write_text(
        json.dumps(
            {"pid": os.getpid(), "scenario": scenario, "proxy": proxy_url, "started": timing.wall()}
        )  # fmt: skip
    )
    return entry


def thrown_since(started: float) -> str | None:
    """The switch's reason when it was thrown after ``started`` (wall clock), else ``None``."""
    switch = directory() / SWITCH
    try:
        thrown = json.loads(switch.read_text())
    except (OSError, ValueError):
        return None
    if float(thrown.get("at", 0)) < started:
        return None
    return f"kill switch thrown ({thrown.get('reason') or 'no reason given'})"


def running() -> Iterator[dict[str, object]]:
    """The drills registered now whose process is alive."""
    for entry in sorted(directory().glob("drill-*.json")):
        try:
            drill = json.loads(entry.read_text())
            os.kill(int(drill["pid"]), 0)
        except (OSError, ValueError, KeyError):
            continue
        yield drill


def throw(reason: str = "") -> list[str]:
    """Throw the switch; return one line per thing done, for the command's output."""
    from pytest_drdrill.proxy import ProxyClient
    from pytest_drdrill.servers.processes import tagged_processes

    switch = directory() / SWITCH
    switch.write_text(json.dumps({"at": timing.wall(), "reason": reason, "pid": os.getpid()}))
    done = [f"kill switch thrown at {switch}"]
    proxies = set()
    for drill in running():
        done.append(f"drill {drill['scenario']} (pid {drill['pid']}): told to heal and stop")
        if drill.get("proxy"):
            proxies.add(str(drill["proxy"]))
    for url in sorted(proxies):
        try:
            ProxyClient(url, timeout=5.0).reset()
            done.append(f"fault proxy {url}: reset (every toxic removed, every path enabled)")
        except Exception as exc:  # a dead proxy carries no fault
            done.append(f"fault proxy {url}: not answering ({exc})")
    for pid, _owner in tagged_processes():
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            continue
    done.append("SIGCONT sent to every process a drill tagged as its own")
    return done
