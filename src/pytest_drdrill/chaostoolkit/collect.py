"""Chaos Toolkit experiment files collected by pytest as drills.

A file named ``experiment-*.json``, ``experiment-*.yaml`` or ``experiment-*.yml`` in the
collected directories (``scenarios/experiments/`` in this repository) is one drill.
chaoslib loads and validates it at collection; an invalid one is a collection error
naming the file and chaoslib's reason. Its ``drdrill`` extension gives the drill's
marker (:mod:`pytest_drdrill.chaostoolkit.experiment`), so ``--drill=CADENCE`` selects
it like any other drill.

Running it: the ``drdrill`` fixture's workloads and orchestrator start and reach the
steady state, chaoslib runs the experiment against that drill (steady-state hypothesis
before and after with its tolerances, the method, then the rollbacks, which always
run), and the drill is judged on the RTO and RPO measured from the clients' history.
The test fails when the measurement misses its target, and also when chaoslib reports
the experiment failed, deviated or aborted. The journal, with the measurement under
``drdrill``, goes into the run's bundle as ``journals/<drill>.json``.

.. versionadded:: 0.4
"""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING, Any

import pytest

from pytest_drdrill.chaostoolkit.journals import keep as keep_journal
from pytest_drdrill.errors import DrillError
from pytest_drdrill.stash import config_key, reporter_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from pytest_drdrill.chaostoolkit.experiment import Experiment, ExperimentDrill
    from pytest_drdrill.drill import Drill

#: File names collected as experiments.
PATTERNS = ("experiment-*.json", "experiment-*.yaml", "experiment-*.yml")

_NO_FAULT = (
    "its method injected no fault through pytest_drdrill.chaostoolkit.actions, so the drill "
    "has no fault to measure RTO and RPO from"
)


class ExperimentFailed(DrillError, AssertionError):
    """chaoslib reports that an experiment failed, deviated or was aborted.

    .. versionadded:: 0.4
    """


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ExperimentFile | None:
    """Collect ``experiment-*.json|yaml|yml`` files as drills."""
    if any(fnmatch.fnmatch(file_path.name, pattern) for pattern in PATTERNS):
        node: ExperimentFile = ExperimentFile.from_parent(parent, path=file_path)
        return node
    return None


class ExperimentFile(pytest.File):
    """One Chaos Toolkit experiment file: one drill, or one per ``--drill-repeat``.

    .. versionadded:: 0.4
    """

    def collect(self) -> Iterator[pytest.Item]:
        """Load and validate the experiment with chaoslib; yield its drill."""
        from pytest_drdrill.chaostoolkit.experiment import InvalidExperiment, load

        try:
            experiment, settings = load(self.path)
        except InvalidExperiment as exc:
            raise self.CollectError(str(exc)) from None
        drill_config = self.config.stash.get(config_key, None)
        repeat = drill_config.repeat if drill_config is not None else 1
        names = [settings.scenario] if repeat < 2 else [
            f"{settings.scenario}[r{n}]" for n in range(1, repeat + 1)
        ]  # fmt: skip
        for name in names:
            yield ExperimentItem.from_parent(
                self,
                name=name,
                callobj=_drill_test(experiment, settings, self.path),
            )


class ExperimentItem(pytest.Function):
    """The drill of one experiment: a test function that takes the ``drdrill`` fixture.

    .. versionadded:: 0.4
    """

    def reportinfo(self) -> tuple[Path, int, str]:
        """Point reports at the experiment file (pytest needs a line: the first)."""
        return self.path, 0, f"Chaos Toolkit experiment {self.name}"


def _drill_test(
    experiment: Experiment, settings: ExperimentDrill, path: Path
) -> Callable[..., None]:
    def experiment_drill(drdrill: Drill, request: pytest.FixtureRequest) -> None:
        __tracebackhide__ = True
        run_drill(drdrill, request, experiment, settings, path)

    marked: Callable[..., None] = pytest.mark.drdrill(**settings.marker_kwargs())(experiment_drill)
    return marked


def run_drill(
    drdrill: Drill,
    request: pytest.FixtureRequest,
    experiment: Experiment,
    settings: ExperimentDrill,
    path: Path,
) -> None:
    """Run ``experiment`` against the running drill, keep its journal, judge both.

    :raises TargetMissed: when the measured drill is red.
    :raises DrillInconclusive: when the fault had no visible effect.
    :raises ExperimentFailed: when chaoslib reports a failed, deviated or aborted run.
    """
    __tracebackhide__ = True
    from pytest_drdrill.chaostoolkit import _context
    from pytest_drdrill.chaostoolkit import experiment as chaos
    from pytest_drdrill.errors import DrillInconclusive, TargetMissed

    with _context.active(drdrill), drdrill.running():
        journal = chaos.run(experiment)
    problems = chaos.problems(journal)
    if not drdrill.record.faults:
        journal["drdrill"] = chaos.measurement(None)
        _keep(request, journal)
        problems = problems or [_NO_FAULT]
        raise ExperimentFailed(f"Chaos Toolkit experiment {path.name}: " + "; ".join(problems))
    measured: AssertionError | None = None
    try:
        drdrill.conclude()
    except (TargetMissed, DrillInconclusive) as exc:
        measured = exc
    finally:
        journal["drdrill"] = chaos.measurement(drdrill.result)
        _keep(request, journal)
    if problems and not settings.negative_control:
        verdict = journal["drdrill"]
        raise ExperimentFailed(
            f"Chaos Toolkit experiment {path.name}: " + "; ".join(problems) + "\n"
            f"measured drill: {verdict['verdict']}: {verdict['reason']}"
        ) from measured
    if measured is not None:
        raise measured


def _keep(request: pytest.FixtureRequest, journal: dict[str, Any]) -> None:
    reporter = request.config.stash.get(reporter_key, None)
    if reporter is not None:
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-")  # r1 of [r1]
        keep_journal(reporter, name, journal)
