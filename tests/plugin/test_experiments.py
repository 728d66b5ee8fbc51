"""Chaos Toolkit experiment files collected as drills: what is collected, how, and errors."""

from __future__ import annotations

import json
import textwrap

import pytest

ACTIONS = "pytest_drdrill.chaostoolkit.actions"


def experiment(**changes: object) -> dict:
    """A valid drill experiment (a monthly crash of the PostgreSQL primary), with changes."""
    document = {
        "title": "primary crash",
        "description": "the PostgreSQL primary is killed",
        "extensions": [{"name": "drdrill", "cadence": "monthly", "tier": "tier_1_critical"}],
        "method": [
            {
                "type": "action",
                "name": "kill",
                "provider": {
                    "type": "python",
                    "module": ACTIONS,
                    "func": "crash_primary",
                    "arguments": {"service": "postgres"},
                },
            }
        ],
    }
    document.update(changes)
    return document


SHOW_MARKERS = """
def pytest_collection_finish(session):
    for item in session.items:
        marker = item.get_closest_marker("drdrill")
        print(f"HOOK: {item.nodeid} cadence={marker.kwargs['cadence']} "
              f"tier={marker.kwargs.get('tier')} scenario={marker.kwargs['scenario']}")
"""


def write(pytester: pytest.Pytester, name: str, document: object) -> None:
    (pytester.path / name).write_text(json.dumps(document))


def test_valid_experiment_is_collected_with_its_marker(pytester: pytest.Pytester) -> None:
    """An experiment-*.json file is one drill carrying its drdrill extension as the marker."""
    pytester.makeconftest(SHOW_MARKERS)
    write(pytester, "experiment-primary-crash.json", experiment())
    result = pytester.runpytest("--collect-only", "-s")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "HOOK: experiment-primary-crash.json::primary-crash cadence=monthly "
            "tier=tier_1_critical scenario=primary-crash"
        ]
    )


def test_yaml_experiment_with_a_scenario_name(pytester: pytest.Pytester) -> None:
    """YAML experiments are collected too; the extension's scenario names the drill."""
    pytester.makeconftest(SHOW_MARKERS)
    extension = {"name": "drdrill", "cadence": "quarterly", "tier": "tier_2_important",
                 "scenario": "region-gone"}  # fmt: skip
    (pytester.path / "experiment-region.yaml").write_text(
        json.dumps(experiment(extensions=[extension]))  # JSON is YAML
    )
    result = pytester.runpytest("--collect-only", "-s")
    result.stdout.fnmatch_lines(
        ["HOOK: experiment-region.yaml::region-gone cadence=quarterly tier=tier_2_important*"]
    )


def test_drill_repeat_collects_one_drill_per_repetition(
    pytester: pytest.Pytester, targets_yaml
) -> None:
    """--drill-repeat=3 gives an experiment three drills, r1 to r3, like a marked test."""
    write(pytester, "experiment-primary-crash.json", experiment())
    result = pytester.runpytest("--collect-only", "-q", "--drill=monthly", "--drill-repeat=3")
    result.stdout.fnmatch_lines(
        [f"experiment-primary-crash.json::primary-crash[[]r{n}[]]" for n in (1, 2, 3)]
    )


def test_other_json_and_yaml_files_are_not_collected(pytester: pytest.Pytester) -> None:
    """Only experiment-*.json|yaml|yml files are experiments; other data files are left alone."""
    write(pytester, "settings.json", {"not": "an experiment"})
    write(pytester, "experiment.json", {"not": "an experiment"})
    (pytester.path / "targets.yaml").write_text("a: 1\n")
    result = pytester.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_experiment_drill_is_skipped_without_drill(pytester: pytest.Pytester) -> None:
    """Without --drill the experiment's drill is skipped, saying how to run it."""
    write(pytester, "experiment-primary-crash.json", experiment())
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*monthly disaster-recovery drill: run with --drill=monthly*to execute it*"]
    )


def test_cadence_selects_experiment_drills(pytester: pytest.Pytester, targets_yaml) -> None:
    """A quarterly experiment is not selected by --drill=monthly, and says which flag runs it."""
    extension = {"name": "drdrill", "cadence": "quarterly", "tier": "tier_1_critical"}
    write(pytester, "experiment-region.json", experiment(extensions=[extension]))
    result = pytester.runpytest("-rs", "--drill=monthly")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*quarterly drill not selected by --drill=monthly; run with --drill=quarterly*"]
    )


def test_unknown_tier_is_a_usage_error_naming_the_experiment(
    pytester: pytest.Pytester, targets_yaml
) -> None:
    """The extension's tier is resolved against the targets file like a marker's."""
    extension = {"name": "drdrill", "tier": "tier_9"}
    write(pytester, "experiment-x.json", experiment(extensions=[extension]))
    result = pytester.runpytest("--drill=monthly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*experiment-x.json::x*tier_9*"])


INVALID = [
    pytest.param(
        "experiment-bad.json",
        "{ not json",
        "*experiment-bad.json: not valid JSON: Expecting property name*chaos validate*",
        id="json-syntax",
    ),
    pytest.param(
        "experiment-bad.yaml",
        "title: [unclosed\n",
        "*experiment-bad.yaml: cannot load the experiment: Failed parsing YAML experiment*",
        id="yaml-syntax",
    ),
    pytest.param(
        "experiment-bad.json",
        {k: v for k, v in experiment().items() if k != "method"},
        "*experiment-bad.json: invalid Chaos Toolkit experiment: an experiment requires a method*",
        id="no-method",
    ),
    pytest.param(
        "experiment-bad.json",
        experiment(
            method=[
                {
                    "type": "action",
                    "name": "kill",
                    "provider": {"type": "python", "module": ACTIONS, "func": "crash_everything"},
                }
            ]
        ),
        "*experiment-bad.json: invalid Chaos Toolkit experiment: The python module "
        f"'{ACTIONS}' does not expose a function called 'crash_everything'*",
        id="unknown-function",
    ),  # fmt: skip
    pytest.param(
        "experiment-bad.json",
        experiment(
            method=[
                {
                    "type": "action",
                    "name": "kill",
                    "provider": {
                        "type": "python",
                        "module": ACTIONS,
                        "func": "crash_node",
                        "arguments": {"nod": "pg-primary"},
                    },
                }
            ]
        ),
        "*experiment-bad.json: invalid Chaos Toolkit experiment: *argument*",
        id="wrong-argument",
    ),  # fmt: skip
    pytest.param(
        "experiment-bad.json",
        experiment(extensions=[]),
        "*experiment-bad.json: a drill needs exactly one extensions entry named 'drdrill' "
        "(found none)*",
        id="no-drill-extension",
    ),
    pytest.param(
        "experiment-bad.json",
        experiment(extensions=[{"name": "drdrill", "cadence": "hourly", "tier": "t"}]),
        "*experiment-bad.json: extensions[[]name=drdrill[]].cadence: 'hourly'; valid cadences: "
        "daily, weekly, monthly, quarterly*",
        id="bad-cadence",
    ),
    pytest.param(
        "experiment-bad.json",
        experiment(extensions=[{"name": "drdrill", "tier": "t", "teir": "x"}]),
        "*experiment-bad.json: extensions[[]name=drdrill[]]: unknown key(s) [[]'teir'[]]*",
        id="unknown-key",
    ),
    pytest.param(
        "experiment-bad.json",
        experiment(extensions=[{"name": "drdrill", "tier": "t", "function": "f"}]),
        "*extensions[[]name=drdrill[]]: name exactly one of tier*or function*",
        id="tier-and-function",
    ),
    pytest.param(
        "experiment-bad.json",
        experiment(extensions=[{"name": "drdrill", "tier": "t", "max_lost_writes": -1}]),
        "*extensions[[]name=drdrill[]].max_lost_writes: -1; give a whole number*",
        id="negative-lost-writes",
    ),
    pytest.param(
        "experiment-bad.yml",
        "- just\n- a list\n",
        "*experiment-bad.yml: a Chaos Toolkit experiment is a mapping*not list*",
        id="not-a-mapping",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), INVALID)
def test_invalid_experiment_is_a_collection_error(
    pytester: pytest.Pytester, name: str, content: object, message: str
) -> None:
    """An invalid experiment fails collection with one line naming the file and the problem."""
    text = content if isinstance(content, str) else json.dumps(content)
    (pytester.path / name).write_text(textwrap.dedent(text))
    write(pytester, "experiment-good.json", experiment())
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*ERROR collecting {name}*", message])
    result.stdout.fnmatch_lines(["*Interrupted: 1 error during collection*"])
    assert "Traceback" not in result.stdout.str()
