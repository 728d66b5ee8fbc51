"""What the default drills need: the local backend's servers and the reference failover.

PostgreSQL and Redis are found exactly as the local backend finds them
(:meth:`PostgresInstall.discover`, :meth:`RedisInstall.discover`), so the doctor and a
drill run never disagree about what is installed.

.. versionadded:: 0.6
"""

from __future__ import annotations

import os
import pwd

from pytest_drdrill.doctor.finding import Finding, Settings, find, script, version
from pytest_drdrill.errors import DrillError


def postgres(settings: Settings) -> Finding:
    """PostgreSQL's server binaries (``initdb``, ``postgres``, ``pg_basebackup``)."""
    from pytest_drdrill.topology.postgres import PostgresInstall

    fix = script("bootstrap", "apt-get install -y postgresql-15")
    if settings.pg_bin:
        fix = f"point --drill-pg-bin at the directory holding them, or {fix}"
    try:
        install = PostgresInstall.discover(settings.pg_bin)
    except DrillError as exc:
        return Finding("PostgreSQL", ok=False, detail=_first_sentence(exc), fix=fix)
    if install.major < 12:
        return Finding(
            "PostgreSQL",
            ok=False,
            detail=f"{install.version} in {install.bindir} is too old (the drills use "
            "pg_promote and recovery.signal, PostgreSQL 12 and later)",
            fix=fix,
        )
    tools = ", ".join(PostgresInstall.TOOLS)
    return Finding("PostgreSQL", ok=True, detail=f"{install.version}: {install.bindir} ({tools})")


def redis(settings: Settings) -> Finding:
    """``redis-server`` for the cache tier of the two-region topology."""
    from pytest_drdrill.topology.redis import RedisInstall

    try:
        install = RedisInstall.discover(settings.redis_bin)
    except DrillError as exc:
        fix = script("bootstrap", "apt-get install -y redis-server")
        return Finding("Redis", ok=False, detail=_first_sentence(exc), fix=fix)
    return Finding("Redis", ok=True, detail=f"{install.version}: {install.server}")


def account(settings: Settings) -> Finding:
    """The unprivileged account servers run as: PostgreSQL refuses to run as root."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        return Finding("server account", ok=True, detail=f"not root: servers run as {me}")
    from pytest_drdrill.servers.processes import RunAs

    name = settings.run_as or "postgres"
    try:
        run_as = RunAs.resolve(name)
    except DrillError as exc:
        useradd = f"useradd --system --shell /usr/sbin/nologin {name}"
        # scripts/bootstrap creates only the default account.
        fix = script("bootstrap", useradd) if name == "postgres" else useradd
        return Finding("server account", ok=False, detail=_first_sentence(exc), fix=fix)
    assert run_as is not None  # resolve returns None only when not root
    return Finding(
        "server account",
        ok=True,
        detail=f"{run_as.user} (uid {run_as.uid}) runs the servers; pytest runs as root",
    )


def s3() -> Finding:
    """Find moto's server, which plays S3 in both regions."""
    from pytest_drdrill.topology.s3 import moto_command

    try:
        command = moto_command()
    except DrillError as exc:
        return Finding(
            "S3 (moto server)",
            ok=False,
            detail=_first_sentence(exc),
            fix="pip install 'moto[server]>=5'",
        )
    return Finding("S3 (moto server)", ok=True, detail=" ".join(command))


def ipcrm() -> Finding:
    """``ipcrm``, which frees the shared memory a crashed PostgreSQL leaves behind."""
    path = find("ipcrm")
    if path is None:
        return Finding(
            "ipcrm",
            ok=False,
            detail="ipcrm not found on PATH: crashed servers' shared memory would pile up",
            fix=script("bootstrap", "apt-get install -y util-linux"),
        )
    return Finding("ipcrm", ok=True, detail=path)


def fault_proxy() -> Finding:
    """The fault proxy: the built-in one, or a real Toxiproxy when one is found."""
    from pytest_drdrill.proxy import find_toxiproxy_server
    from pytest_drdrill.topology.local import TOXIPROXY_URL_ENV

    external = os.environ.get(TOXIPROXY_URL_ENV)
    if external:
        return Finding(
            "fault proxy", ok=True, detail=f"Toxiproxy at {external} ({TOXIPROXY_URL_ENV})"
        )
    server = find_toxiproxy_server()
    if server is not None:
        found = version([server, "-version"])
        return Finding("fault proxy", ok=True, detail=f"toxiproxy-server {found or ''}: {server}")
    return Finding(
        "fault proxy",
        ok=True,
        detail="built in (no toxiproxy-server on PATH, DRDRILL_TOXIPROXY_URL unset)",
    )


def _first_sentence(exc: BaseException) -> str:
    # The errors end with their own remedy; the doctor prints its fix on a line of its own.
    text = str(exc)
    for marker in (". Install", ". Create it", ". Start one", ". Build them"):
        if marker in text:
            return text.split(marker, 1)[0]
    return text
