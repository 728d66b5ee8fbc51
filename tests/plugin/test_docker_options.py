"""Options of the Docker and running-stack backends, checked without a Docker daemon."""

from __future__ import annotations

import pytest

from pytest_drdrill.errors import FaultError
from pytest_drdrill.faults import docker as docker_faults
from pytest_drdrill.topology import reaper
from pytest_drdrill.topology.docker_engine import (
    DEFAULT_IMAGES,
    LABEL_HOST,
    LABEL_OWNER,
    Images,
    host_id,
)

PRINT_IMAGES = """
def test_print(drdrill_config):
    print()
    print("IMAGES", dict(drdrill_config.docker_images))
"""


def test_docker_images_from_the_command_line(pytester: pytest.Pytester) -> None:
    """--drill-docker-images replaces the named services' images and keeps the others."""
    pytester.makepyfile(PRINT_IMAGES)
    result = pytester.runpytest("-s", "--drill-docker-images=postgres=postgres:15, redis=redis:7")
    result.assert_outcomes(passed=1)
    expected = {**DEFAULT_IMAGES, "postgres": "postgres:15", "redis": "redis:7"}
    result.stdout.fnmatch_lines([f"IMAGES {expected}"])


def test_docker_images_from_the_ini_file(pytester: pytest.Pytester) -> None:
    """The ini key drill_docker_images takes one service=image per line too."""
    pytester.makeini("[pytest]\ndrill_docker_images =\n    proxy=ghcr.io/shopify/toxiproxy\n")
    pytester.makepyfile(PRINT_IMAGES)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    expected = {**DEFAULT_IMAGES, "proxy": "ghcr.io/shopify/toxiproxy"}
    result.stdout.fnmatch_lines([f"IMAGES {expected}"])


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        pytest.param(
            ["--drill-docker-images=mysql=mysql:8"], None,
            "ERROR: --drill-docker-images: 'mysql=mysql:8' is not service=image with a "
            "service among postgres, redis, s3, proxy*(set with --drill-docker-images / "
            "ini drill_docker_images)",
            id="cli-unknown-service",
        ),
        pytest.param(
            [], "[pytest]\ndrill_docker_images = postgres\n",
            "ERROR: ini key drill_docker_images: 'postgres' is not service=image*",
            id="ini-no-image",
        ),
        pytest.param(
            ["--drill-backend=stack"], None,
            "ERROR: --drill-backend=stack needs the stack's description: pass "
            "--drill-stack=FILE / ini drill_stack*",
            id="stack-without-file",
        ),
        pytest.param(
            ["--drill-backend=k8s"], None,
            "ERROR: --drill-backend: invalid value 'k8s'; valid values are auto, local, "
            "docker, stack (set with --drill-backend / ini drill_backend)",
            id="unknown-backend",
        ),
    ],
)  # fmt: skip
def test_bad_backend_settings_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], ini: str | None, message: str
) -> None:
    """A bad image list, a stack backend without its file or an unknown backend: usage error."""
    if ini:
        pytester.makeini(ini)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_images_parse_defaults_and_overrides() -> None:
    """Unnamed services keep drdrill/<service>; whitespace and newlines are allowed."""
    images = Images.parse(" s3 = my/moto:1 \n proxy=tp ", where="x")
    assert images == Images(postgres="drdrill/postgres", redis="drdrill/redis", s3="my/moto:1",
                            proxy="tp")  # fmt: skip
    assert Images.parse(None, where="x") == Images()


class _LocalNode:
    name = "pg-primary"
    region = "primary"


@pytest.mark.parametrize("make", [docker_faults.pause, docker_faults.disconnect,
                                  docker_faults.restart, docker_faults.kill])  # fmt: skip
def test_docker_faults_refuse_nodes_outside_containers(make) -> None:
    """A Docker-level fault on a local node says to run with --drill-backend=docker."""
    with pytest.raises(FaultError, match=r"needs a node running in a Docker container.*"
                                         r"--drill-backend=docker"):  # fmt: skip
        make(_LocalNode())


def test_reaper_judges_only_dead_owners_of_this_machine() -> None:
    """Leftovers are objects of a dead owner on this machine; live or foreign ones are kept."""
    from pytest_drdrill.servers import processes

    here = host_id()
    dead = subprocess_tag()
    assert reaper._dead({LABEL_OWNER: dead, LABEL_HOST: here}, here)
    assert not reaper._dead({LABEL_OWNER: processes.owner_tag(), LABEL_HOST: here}, here)
    assert not reaper._dead({LABEL_OWNER: dead, LABEL_HOST: "another-machine"}, here)
    assert not reaper._dead({}, here)


def subprocess_tag() -> str:
    """The owner tag of a process that has exited."""
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", "from pytest_drdrill.servers import processes; "
         "print(processes.owner_tag())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return child.stdout.strip()


def test_stack_file_errors_name_the_file_and_key(tmp_path) -> None:
    """A stack file with a wrong key is refused with the file, the key and the valid keys."""
    from pathlib import Path

    from pytest_drdrill.topology.stack import StackFileError, StackSpec

    shipped = Path(__file__).resolve().parents[2] / "fixtures" / "stack-compose.yaml"
    assert StackSpec.load(shipped).allowed == {"cut", "latency", "bandwidth", "timeout",
                                               "reset_peer"}  # fmt: skip
    bad = tmp_path / "stack.yaml"
    bad.write_text(shipped.read_text().replace("allowed_faults:", "allowed_fault:"))
    expected = (
        rf"stack file {bad}, key \(top level\): unknown key\(s\) allowed_fault; "
        r"valid: .*allowed_faults"
    )
    with pytest.raises(StackFileError, match=expected):
        StackSpec.load(bad)
    bad.write_text(shipped.read_text().replace("region: dr,", "region: west,", 1))
    with pytest.raises(StackFileError, match=r"key nodes.pg-dr.region: give primary or dr"):
        StackSpec.load(bad)


def test_auto_picks_local_without_a_daemon(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, targets_yaml
) -> None:
    """With no Docker daemon, auto picks local and says so in the terminal header."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path / 'no-docker.sock'}")
    pytester.makepyfile("def test_nothing(): pass\n")
    result = pytester.runpytest("--drill=daily", "--drill-backend=auto")
    result.stdout.fnmatch_lines(
        ["drdrill: backend local (auto: no Docker daemon answers*), fault proxy *"]
    )


def test_the_default_backend_is_local_even_with_a_daemon(
    pytester: pytest.Pytester, targets_yaml
) -> None:
    """Without --drill-backend the embedded local processes run, whatever Docker offers."""
    pytester.makepyfile("def test_nothing(): pass\n")
    result = pytester.runpytest("--drill=daily")
    result.stdout.fnmatch_lines(["drdrill: backend local, fault proxy *"])


PRINT_STACK = """
def test_print(drdrill_config):
    print()
    print("STACK", drdrill_config.backend, drdrill_config.stack_file)
"""


def test_stack_file_from_the_command_line_and_the_ini_file(pytester: pytest.Pytester) -> None:
    """--drill-stack is read against the invocation dir, ini drill_stack against the ini's."""
    pytester.makepyfile(PRINT_STACK)
    result = pytester.runpytest("-s", "--drill-backend=stack", "--drill-stack=game.yaml")
    result.stdout.fnmatch_lines([f"STACK stack {pytester.path / 'game.yaml'}"])
    pytester.makeini("[pytest]\ndrill_backend = stack\ndrill_stack = stacks/staging.yaml\n")
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines([f"STACK stack {pytester.path / 'stacks' / 'staging.yaml'}"])
