"""Reliability: drills interrupted at random points, and what each interruption left behind.

Run from the repository root, as root, with nothing else of pytest-drdrill running::

    PYTHONPATH=src python bench/bench_interruptions.py [--runs 50] [--seed 1]

Each run starts ``pytest`` on the monthly primary-crash drill (local backend) and, after a
random delay covering start-up, the drill and teardown, interrupts it one of five ways, in
turn: SIGINT, SIGTERM or SIGKILL of pytest; SIGKILL of the fault proxy; SIGKILL of a
PostgreSQL server while the drill fails over. Ten seconds after pytest has exited, it counts
what is left of that run:

- processes tagged with the run's owner (``DRDRILL_OWNER``: servers, proxy, clients);
- listening TCP ports held by any of them;
- Docker containers, networks and volumes labelled with the run (when a daemon answers);
- data roots (``/tmp/drdrill-*``) owned by the run;
- SysV shared-memory segments a process of the run created, left with nobody attached.

It prints one line per run and a table of leftovers by kind and interruption; the target
(issue 18) is 0 of every kind.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from pytest_drdrill.servers import processes

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("SIGINT pytest", "SIGTERM pytest", "SIGKILL pytest", "SIGKILL proxy", "SIGKILL server")


def _shm() -> dict[int, tuple[int, int]]:
    """shmid -> (creator pid, attached processes), from /proc/sysvipc/shm."""
    found = {}
    for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]:
        fields = line.split()
        found[int(fields[1])] = (int(fields[4]), int(fields[6]))
    return found


class _RunPids(threading.Thread):
    """Every pid tagged with the run's owner, sampled while it runs (to attribute shm)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.prefix = f"{pid}:"
        self.pids: set[int] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.pids.update(
                p for p, o in processes.tagged_processes() if o.startswith(self.prefix)
            )
            self.done.wait(0.2)


def _docker_objects(pid: int) -> list[str]:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
    except Exception:
        return []
    try:
        prefix = f"{pid}:"
        objects = [
            *(f"container {c.name}" for c in client.containers.list(all=True)
              if c.labels.get("io.drdrill.owner", "").startswith(prefix)),
            *(f"network {n.name}" for n in client.networks.list()
              if (n.attrs.get("Labels") or {}).get("io.drdrill.owner", "").startswith(prefix)),
            *(f"volume {v.name}" for v in client.volumes.list()
              if (v.attrs.get("Labels") or {}).get("io.drdrill.owner", "").startswith(prefix)),
        ]  # fmt: skip
        return objects
    finally:
        client.close()


def leftovers(pid: int, shm_before: set[int], run_pids: set[int]) -> dict[str, list[str]]:
    """What the pytest process ``pid`` left behind, by kind."""
    prefix = f"{pid}:"
    procs = [p for p, owner in processes.tagged_processes() if owner.startswith(prefix)]
    ports = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in procs:
            ports.append(f"port {conn.laddr.port} (pid {conn.pid})")
    roots = []
    for root in Path(tempfile.gettempdir()).glob("drdrill-*"):
        try:
            if (root / "owner").read_text().startswith(prefix):
                roots.append(str(root))
        except OSError:
            continue
    shm = [
        f"shm {i} (created by pid {cpid})"
        for i, (cpid, attached) in _shm().items()
        if i not in shm_before and attached == 0 and cpid in run_pids
    ]
    return {
        "processes": [f"pid {p}: {processes.command_line(p)}" for p in procs],
        "ports": ports,
        "docker": _docker_objects(pid),
        "temp dirs": roots,
        "shm segments": shm,
    }


def _children(pid: int, needle: str) -> list[psutil.Process]:
    try:
        tree = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for child in tree:
        try:
            if needle in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def one_run(kind: str, delay: float, work: Path) -> tuple[int, dict[str, list[str]]]:
    """Start a drill, interrupt it ``delay`` seconds in, return pytest's pid and leftovers."""
    shm_before = set(_shm())
    argv = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--drill=monthly",
        "--drill-backend=local", f"--drill-targets={ROOT / 'fixtures' / 'targets.yaml'}",
        f"--drill-report-dir={work / 'reports'}",
        str(ROOT / "scenarios" / "test_postgres_failover.py"),
        "-k", "losing_the_primary and crash",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    pytest = subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    sampler = _RunPids(pytest.pid)
    sampler.start()
    time.sleep(delay)
    if kind.endswith("pytest"):
        sig = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}[
            kind.split()[0]
        ]
        pytest.send_signal(sig)
    elif kind == "SIGKILL proxy":
        for proxy in _children(pytest.pid, "pytest_drdrill.proxy"):
            proxy.kill()
    else:
        servers = _children(pytest.pid, "postgres -D")
        if servers:
            random.choice(servers).kill()
    try:
        pytest.wait(timeout=180)
    except subprocess.TimeoutExpired:
        pytest.kill()
        pytest.wait()
    sampler.done.set()
    sampler.join()
    time.sleep(10)
    return pytest.pid, leftovers(pytest.pid, shm_before, sampler.pids)


def main() -> None:
    """Run the interruptions and print what each left."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    totals: dict[str, collections.Counter[str]] = {k: collections.Counter() for k in KINDS}
    with tempfile.TemporaryDirectory(prefix="bench-interrupt-") as tmp:
        for run in range(args.runs):
            kind = KINDS[run % len(KINDS)]
            delay = rng.uniform(1.0, 14.0)
            pid, left = one_run(kind, delay, Path(tmp))
            counts = {k: len(v) for k, v in left.items()}
            totals[kind].update(counts)
            detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in left.items() if v)
            print(f"run {run + 1:>2} {kind:<15} at {delay:5.1f}s pid {pid}: "
                  f"{sum(counts.values())} left {detail}", flush=True)  # fmt: skip
    names = ("processes", "ports", "docker", "temp dirs", "shm segments")
    print(f"\n{'interruption':<16}{'runs':>5}" + "".join(f"{n:>14}" for n in names))
    for index, kind in enumerate(KINDS):
        runs = len(range(index, args.runs, len(KINDS)))
        row = "".join(f"{totals[kind][n]:>14}" for n in names)
        print(f"{kind:<16}{runs:>5}{row}")
    grand = {n: sum(totals[k][n] for k in KINDS) for n in names}
    print(f"{'all':<16}{args.runs:>5}" + "".join(f"{grand[n]:>14}" for n in names))


if __name__ == "__main__":
    main()
