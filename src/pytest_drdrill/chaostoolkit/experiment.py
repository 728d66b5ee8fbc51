"""A Chaos Toolkit experiment as a drill: loaded and validated by chaoslib, run by chaoslib.

What makes an experiment a drill is one entry of its ``extensions`` list, named
``drdrill``, holding the keys of the ``@pytest.mark.drdrill`` marker::

    "extensions": [{"name": "drdrill", "cadence": "monthly", "tier": "tier_1_critical",
                    "data": "critical_user_data", "max_lost_writes": 0}]

``scenario`` defaults to the file's name without ``experiment-`` and its suffix.

.. versionadded:: 0.4
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Any

from pytest_drdrill.errors import DrillError
from pytest_drdrill.options import CADENCES

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_drdrill.results import DrillResult

#: The ``name`` of the experiment's extension entry that describes the drill.
EXTENSION = "drdrill"

Experiment = dict[str, Any]
Journal = dict[str, Any]

_SERVICES = ("postgres", "redis", "s3")


class InvalidExperiment(DrillError, ValueError):
    """An experiment file is not a valid Chaos Toolkit experiment or drill.

    .. versionadded:: 0.4
    """


@dataclasses.dataclass(frozen=True)
class ExperimentDrill:
    """What an experiment's ``drdrill`` extension says about the drill.

    The fields are the ``@pytest.mark.drdrill`` marker's, with the same meaning.

    .. versionadded:: 0.4
    """

    scenario: str
    cadence: str = "monthly"
    tier: str | None = None
    function: str | None = None
    data: str | None = None
    max_lost_writes: int | None = None
    negative_control: bool = False
    observe: str | None = None
    service: str = "postgres"
    #: A stack name, or a list of the stacks the experiment runs under (see the marker).
    postgres_failover: str | list[str] | None = None
    #: When the drill is stopped and healed, as the marker's ``guardrails=`` (new in 0.7).
    guardrails: dict[str, Any] | None = None

    def marker_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``pytest.mark.drdrill``, without the unset ones."""
        kwargs = {
            key: value
            for key, value in dataclasses.asdict(self).items()
            if value is not None and not (key == "negative_control" and value is False)
        }
        if isinstance(self.postgres_failover, list):
            kwargs["postgres_failover"] = tuple(self.postgres_failover)
        return kwargs


def load(path: Path) -> tuple[Experiment, ExperimentDrill]:
    """Load an experiment file with chaoslib, validate it, and read its drill settings.

    :param path: a ``.json``, ``.yaml`` or ``.yml`` experiment.
    :returns: the experiment as chaoslib loaded it, and its drill settings.
    :raises InvalidExperiment: naming the file and chaoslib's reason or the bad key.
    """
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    how = f"Check it with `chaos validate {path}`."
    try:
        experiment = load_experiment(str(path))
    except ChaosException as exc:
        raise InvalidExperiment(f"{path}: cannot load the experiment: {exc}. {how}") from None
    except ValueError as exc:  # json's decoder errors
        raise InvalidExperiment(f"{path}: not valid JSON: {exc}. {how}") from None
    if not isinstance(experiment, dict):
        raise InvalidExperiment(
            f"{path}: a Chaos Toolkit experiment is a mapping (title, description, method, "
            f"...), not {type(experiment).__name__}. {how}"
        )
    try:
        ensure_experiment_is_valid(experiment)
    except ChaosException as exc:
        raise InvalidExperiment(f"{path}: invalid Chaos Toolkit experiment: {exc}. {how}") from None
    except (AttributeError, TypeError, KeyError, IndexError) as exc:
        # chaoslib's validator assumes the shape it validates: a null or a list where it
        # expects a mapping breaks it before it can say which key is wrong.
        raise InvalidExperiment(
            f"{path}: invalid Chaos Toolkit experiment: a key holds a value of the wrong "
            f"kind (chaoslib's validator failed with {type(exc).__name__}: {exc}); check that "
            f"method, steady-state-hypothesis, rollbacks, controls and extensions hold the "
            f"lists and mappings Chaos Toolkit documents. {how}"
        ) from None
    scenario = path.stem.removeprefix("experiment-")
    return experiment, drill_settings(experiment, str(path), scenario=scenario)


def drill_settings(experiment: Experiment, source: str, *, scenario: str) -> ExperimentDrill:
    """Read and check the experiment's ``drdrill`` extension.

    :param experiment: the experiment as chaoslib loaded it.
    :param source: where it came from, for messages (its file).
    :param scenario: the scenario when the extension names none.
    :raises InvalidExperiment: naming the source, the key and what is allowed.
    """
    path = source
    entries = [e for e in experiment.get("extensions") or [] if e.get("name") == EXTENSION]
    where = f"{path}: extensions[name={EXTENSION}]"
    example = (
        f'add {{"name": "{EXTENSION}", "cadence": "monthly", "tier": "tier_1_critical"}} '
        "to the experiment's extensions"
    )
    if len(entries) != 1:
        found = "none" if not entries else f"{len(entries)}"
        raise InvalidExperiment(
            f"{path}: a drill needs exactly one extensions entry named {EXTENSION!r} (found "
            f"{found}) saying how often it runs and what it is judged against; {example}"
        )
    entry = {k: v for k, v in entries[0].items() if k != "name"}
    fields = {f.name for f in dataclasses.fields(ExperimentDrill)}
    unknown = set(entry) - fields
    if unknown:
        raise InvalidExperiment(
            f"{where}: unknown key(s) {sorted(unknown)}; valid: {sorted(fields)}"
        )
    cadence = entry.get("cadence", "monthly")
    if cadence not in CADENCES:
        raise InvalidExperiment(
            f"{where}.cadence: {cadence!r}; valid cadences: {', '.join(CADENCES)}"
        )
    if (entry.get("tier") is None) == (entry.get("function") is None):
        raise InvalidExperiment(
            f"{where}: name exactly one of tier (e.g. 'tier_1_critical') or function "
            "(e.g. 'user_authentication') of the targets file"
        )
    for key in ("scenario", "tier", "function", "data", "observe"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise InvalidExperiment(f"{where}.{key}: {entry[key]!r}; give a string")
    lost = entry.get("max_lost_writes")
    if lost is not None and (isinstance(lost, bool) or not isinstance(lost, int) or lost < 0):
        raise InvalidExperiment(
            f"{where}.max_lost_writes: {lost!r}; give a whole number of writes, 0 or more"
        )
    if not isinstance(entry.get("negative_control", False), bool):
        raise InvalidExperiment(f"{where}.negative_control: give true or false")
    if entry.get("service", "postgres") not in _SERVICES:
        raise InvalidExperiment(
            f"{where}.service: {entry['service']!r}; valid services: {', '.join(_SERVICES)}"
        )
    if entry.get("guardrails") is not None:
        from pytest_drdrill.guardrails import parse as parse_guardrails

        try:  # targets are not loaded yet: function names are checked when the drill runs
            parse_guardrails(f"{where}.guardrails", entry["guardrails"], None, None)
        except ValueError as exc:
            raise InvalidExperiment(str(exc)) from None
    if not entry.get("scenario"):
        entry["scenario"] = scenario
    return ExperimentDrill(**entry)


def run(experiment: Experiment) -> Journal:
    """Run ``experiment`` with chaoslib; its rollbacks run whatever happened before them.

    chaoslib's default rollback strategy skips them after a failed steady state or an
    interruption; a drill must never leave its faults behind, so the strategy is
    ``always``, as ``chaos run --rollback-strategy=always`` would do.

    :returns: chaoslib's journal.
    """
    from chaoslib.experiment import run_experiment

    settings = {"runtime": {"rollbacks": {"strategy": "always"}}}
    journal: Journal = run_experiment(copy.deepcopy(experiment), settings=settings)
    return journal


def problems(journal: Journal) -> list[str]:
    """What chaoslib reports as wrong in a journal, one sentence each; empty when nothing.

    :param journal: a journal returned by :func:`run` or written by ``chaos run``.
    """
    found = []
    status = journal.get("status")
    if status != "completed":
        found.append(f"chaoslib ended the experiment with status {status!r}")
    states = journal.get("steady_states") or {}
    for when in ("before", "after"):
        state = states.get(when)
        if state is None or state.get("steady_state_met") is not False:
            continue
        for probe in state.get("probes", []):
            if probe.get("status") != "succeeded":
                found.append(
                    f"steady-state probe {_name(probe)!r} {when} the method failed: {_error(probe)}"
                )
            elif not probe.get("tolerance_met", True):
                tolerance = probe["activity"].get("tolerance")
                found.append(
                    f"steady state {when} the method not met: probe {_name(probe)!r} "
                    f"returned {probe.get('output')!r}, outside its tolerance {tolerance!r}"
                )
    for section, what in (("run", "method"), ("rollbacks", "rollback")):
        for activity in journal.get(section) or []:
            if activity.get("status") == "failed":
                found.append(f"{what} activity {_name(activity)!r} failed: {_error(activity)}")
    return found


def measurement(result: DrillResult | None) -> dict[str, Any]:
    """The drill's measurement as it goes into a journal under ``drdrill``.

    :param result: the drill's result; ``None`` when nothing was measured (no fault).
    :returns: a summary (verdict, reason, RTO, lost writes, faults) and, under ``result``,
        the drill as ``drill.json`` holds it.
    """
    if result is None:
        return {"verdict": None, "reason": "no fault was injected: nothing was measured"}
    from pytest_drdrill import timing
    from pytest_drdrill.reporting.drill_json import drill_to_dict

    return {
        "verdict": result.verdict.value,
        "reason": result.reason,
        "rto_seconds": None if result.rto is None else result.rto.seconds,
        "lost_writes": None if result.rpo is None else result.rpo.lost_writes,
        "faults": [f"{f.kind} of {f.target}" for f in result.faults],
        "result": drill_to_dict(result, timing.anchor()),
    }


def _name(run: dict[str, Any]) -> str:
    return str(run.get("activity", {}).get("name", "?"))


def _error(run: dict[str, Any]) -> str:
    lines = run.get("exception") or []
    return lines[-1].strip() if lines else "no error recorded"
