"""A team's own testcontainers, handed to a drill: the drill faults and measures *them*.

The inner project's ``conftest.py`` starts PostgreSQL, Redis and an object store the way a
team's fixtures do (testcontainers' ``DockerContainer``, published ports, a log wait
strategy) and overrides ``drdrill_backend`` with :func:`adopt_containers`. Its drill
freezes the team's PostgreSQL container for two seconds: the RTO comes from the drill's
client, through the fault proxy in front of the container, so it cannot be shorter than
the pause; the business function ``user_authentication`` is measured by the targets file's
SQL probe against the team's database, as a stack backend measures a team's real
functions. Afterwards none of the team's containers is left.
"""

from __future__ import annotations

import json

import pytest
import yaml
from docker_helpers import ROOT

from pytest_drdrill.errors import TopologyError
from pytest_drdrill.topology.adopted import AdoptedNode, adopt_containers
from pytest_drdrill.topology.docker_engine import connect

TEAM_LABEL = "com.example.team-fixture"

CONFTEST = f'''
import os

import pytest
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import LogMessageWaitStrategy

from pytest_drdrill.topology.adopted import AdoptedNode, adopt_containers

LABELS = {{"{TEAM_LABEL}": "adopt-test"}}
PG = (
    "initdb --no-sync -A trust -U postgres -D /tmp/pg >/dev/null && "
    "printf 'host all all all trust\\\\n' >> /tmp/pg/pg_hba.conf && "
    "exec postgres -D /tmp/pg -c listen_addresses=* -c shared_buffers=16MB"
)


def _container(image, port, ready, **kwargs):
    return (
        DockerContainer(image)
        .with_exposed_ports(port)
        .with_kwargs(labels=LABELS, **kwargs)
        .waiting_for(LogMessageWaitStrategy(ready).with_startup_timeout(60))
    )


@pytest.fixture(scope="session")
def team_containers():
    postgres = _container("drdrill/postgres", 5432, "ready to accept connections",
                          user="postgres", entrypoint=["sh", "-c", PG])
    redis = _container("drdrill/redis", 6379, "Ready to accept connections")
    objects = _container("drdrill/s3", 9000, "Running on").with_command(
        ["moto_server", "-H", "0.0.0.0", "-p", "9000"])
    with postgres, redis, objects:
        yield postgres, redis, objects


@pytest.fixture(scope="session")
def drdrill_backend(team_containers, tmp_path_factory):
    postgres, redis, objects = team_containers
    # The team's own function probe (targets file) reaches its database directly.
    os.environ["APP_DSN"] = (
        f"host=127.0.0.1 port={{postgres.get_exposed_port(5432)}} user=postgres dbname=postgres"
    )
    nodes = {{
        "pg-primary": AdoptedNode(postgres, "postgres", 5432),
        "redis-primary": AdoptedNode(redis, "redis", 6379),
        "s3-primary": AdoptedNode(objects, "s3", 9000),
    }}
    with adopt_containers(nodes, tmp_path_factory.mktemp("adopted")) as backend:
        yield backend
'''

DRILL = """
import pytest
from pytest_drdrill import timing


@pytest.mark.drdrill(cadence="monthly", tier="tier_1_critical", data="critical_user_data",
                     scenario="adopted-postgres-frozen")
def test_the_teams_postgres_frozen_for_two_seconds(drdrill):
    with drdrill.running(failover=False):
        drdrill.faults.freeze(drdrill.topology.primary)
        timing.sleep(2.0)
        drdrill.faults.heal()
        assert drdrill.await_recovery(timeout=30)
    drdrill.conclude()
"""


def _team_containers() -> list[str]:
    client = connect()
    try:
        found = client.containers.list(all=True, filters={"label": TEAM_LABEL})
        return [str(c.name) for c in found]
    finally:
        client.close()


def test_a_drill_faults_and_measures_the_teams_own_containers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")  # no Ryuk image here
    targets = yaml.safe_load((ROOT / "fixtures" / "targets.yaml").read_text())
    login = targets["business_functions"]["user_authentication"]
    login["probes"] = [{"name": "login-query", "sql": {"dsn_env": "APP_DSN", "query": "SELECT 1",
                                                        "expect": 1, "timeout": "1s"}}]  # fmt: skip
    login["probe_interval"] = "100ms"
    (pytester.path / "targets.yaml").write_text(yaml.safe_dump(targets, sort_keys=False))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_adopted=DRILL)
    result = pytester.runpytest_subprocess(
        "--drill=monthly", "--drill-backend=local", f"--drill-targets={pytester.path}/targets.yaml",
        f"--drill-report-dir={pytester.path / 'reports'}", "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    (report,) = (pytester.path / "reports").glob("*/drill.json")
    (drill,) = json.loads(report.read_text())["drills"]
    assert drill["verdict"] == "pass", drill["reason"]
    assert drill["backend"] == "stack"
    (fault,) = drill["faults"]
    assert fault["kind"] == "freeze"
    postgres = next(s for s in drill["services"] if s["service"] == "postgres")
    assert 1.5 <= postgres["rto"]["seconds"] < 15, postgres
    # The stack's function, measured from the team's own probe against its own database.
    function = next(f for f in drill["functions"] if f["function"] == "user_authentication")
    assert function["probes"] == ["sql on $APP_DSN: SELECT 1"]
    assert function["rto"]["effect_seen"], function
    assert 1.5 <= function["rto"]["seconds"] < 15, function
    assert not _team_containers(), "the team's fixtures left containers behind"


def test_a_service_without_a_container_is_refused_naming_it(tmp_path) -> None:
    class Started:
        def get_container_host_ip(self) -> str:
            return "127.0.0.1"

    with pytest.raises(TopologyError, match="no node serves redis, s3"):
        with adopt_containers({"pg": AdoptedNode(Started(), "postgres", 5432)}, tmp_path):
            pass
    with pytest.raises(TopologyError, match="node 'db' has service 'mysql'"):
        with adopt_containers({"db": AdoptedNode(Started(), "mysql", 3306)}, tmp_path):
            pass
