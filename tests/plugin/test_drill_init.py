"""``pytest --drill-init``: the starter project, written whole or not at all."""

from __future__ import annotations

import ast

import pytest

from pytest_drdrill.targets import PACKAGED_TARGETS, load_targets
from pytest_drdrill.topology.stack_file import StackSpec

STARTER = (
    "fixtures/targets.yaml",
    "fixtures/stack.yaml",
    "drills/conftest.py",
    "drills/test_example_drill.py",
)


def test_init_writes_the_starter_and_runs_no_tests(pytester: pytest.Pytester) -> None:
    """Every starter file is written and named; a test in the directory does not run."""
    pytester.makepyfile(test_must_not_run="def test_fails():\n    raise AssertionError\n")
    result = pytester.runpytest("--drill-init")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [f"drdrill: wrote {name}" for name in STARTER]
        + ["drdrill: run the example drill with: pytest --drill=monthly"]
    )
    result.stdout.no_fnmatch_line("*test_must_not_run*")
    result.stdout.no_fnmatch_line("*failed*")
    for name in STARTER:
        assert (pytester.path / name).is_file(), name


def test_init_files_are_valid_and_the_hook_is_commented(pytester: pytest.Pytester) -> None:
    """Targets and stack files load; the conftest defines no hook until one is uncommented."""
    assert pytester.runpytest("--drill-init").ret == 0
    targets = pytester.path / "fixtures" / "targets.yaml"
    assert targets.read_bytes() == PACKAGED_TARGETS.read_bytes()
    assert load_targets(targets).resolve(tier="tier_1_critical", data="critical_user_data")
    stack = StackSpec.load(pytester.path / "fixtures" / "stack.yaml")
    assert stack.proxy_api == "http://127.0.0.1:8474"
    conftest = (pytester.path / "drills" / "conftest.py").read_text()
    assert "# def pytest_drdrill_failover(service, topology, record, detection):" in conftest
    assert not [n for n in ast.walk(ast.parse(conftest)) if isinstance(n, ast.FunctionDef)]
    example = ast.parse((pytester.path / "drills" / "test_example_drill.py").read_text())
    assert [n.name for n in example.body if isinstance(n, ast.FunctionDef)] == [
        "test_primary_crash"
    ]


def test_without_drill_the_example_drill_is_skipped(pytester: pytest.Pytester) -> None:
    """A plain pytest in the written project skips the example drill, saying how to run it."""
    assert pytester.runpytest("--drill-init").ret == 0
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*--drill=monthly*"])


@pytest.mark.parametrize("existing", STARTER)
def test_init_refuses_to_overwrite_and_writes_nothing(
    pytester: pytest.Pytester, existing: str
) -> None:
    """One starter file already there: usage error naming it, no file written or changed."""
    path = pytester.path / existing
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# the team's own\n")
    result = pytester.runpytest("--drill-init")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --drill-init wrote nothing: {path} already exists, and it never overwrites*"]
    )
    assert path.read_text() == "# the team's own\n"
    for name in STARTER:
        if name != existing:
            assert not (pytester.path / name).exists(), name
