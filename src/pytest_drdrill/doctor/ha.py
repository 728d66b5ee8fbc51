"""The HA stacks drills can follow instead of the reference failover.

Redis Sentinel (``--drill-redis-failover=sentinel``) and the Patroni cluster (Patroni,
etcd as its DCS, HAProxy in front) are optional: the default drills fail over with the
reference orchestrator.

.. versionadded:: 0.6
"""

from __future__ import annotations

from pytest_drdrill.doctor.finding import Finding, Settings, program, script
from pytest_drdrill.errors import DrillError


def sentinel(settings: Settings) -> Finding:
    """Redis Sentinel: ``redis-sentinel``, or ``redis-server --sentinel`` (the same program)."""
    from pytest_drdrill.topology.redis import RedisInstall

    fix = script("bootstrap", "apt-get install -y redis-sentinel")
    try:
        install = RedisInstall.discover(settings.redis_bin)
    except DrillError:
        return Finding("Redis Sentinel", ok=False, detail="no redis-server to run it", fix=fix)
    if install.sentinel is not None:
        return Finding("Redis Sentinel", ok=True, detail=f"{install.version}: {install.sentinel}")
    return Finding(
        "Redis Sentinel",
        ok=True,
        detail=f"{install.version}: {install.server} --sentinel (no redis-sentinel on PATH)",
    )


def patroni_stack() -> list[Finding]:
    """Patroni, etcd and HAProxy, as the Patroni cluster starts them."""
    return [
        program("Patroni", "patroni", script("bootstrap", "apt-get install -y patroni")),
        program("etcd", "etcd", script("bootstrap", "apt-get install -y etcd-server")),
        program(
            "HAProxy", "haproxy", script("bootstrap", "apt-get install -y haproxy"), args=("-v",)
        ),
    ]
