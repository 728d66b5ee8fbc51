"""The pytest-drdrill control: ``chaos run`` gets a real drill around the experiment.

Declare it in the experiment::

    "controls": [{"name": "drdrill",
                  "provider": {"type": "python",
                               "module": "pytest_drdrill.chaostoolkit.control"}}]

Before the experiment it starts the local two-region topology, one measuring client per
service and the reference orchestrator with its failover, and waits for the steady state.
After it, it measures RTO and RPO from the clients' history, judges them against the
targets file (argument ``targets``, default ``fixtures/targets.yaml`` when it exists),
puts the measurement in the journal under ``drdrill`` and stops everything, also when
the run failed or was interrupted. A drill that is red or inconclusive marks the journal
``deviated``, so ``chaos run`` exits non-zero.

When pytest runs the experiment, the ``drdrill`` fixture's drill is already running: the
control leaves it alone, and the drill item measures and judges it.

.. versionadded:: 0.4
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_drdrill.chaostoolkit import _context

if TYPE_CHECKING:
    from pytest_drdrill.chaostoolkit.standalone import StandaloneDrill

# chaostoolkit's CLI shows this logger's messages; a control's own logger stays silent.
logger = logging.getLogger("chaostoolkit")

#: The targets file used when the control's ``targets`` argument is not given.
DEFAULT_TARGETS = Path("fixtures/targets.yaml")

_standalone: StandaloneDrill | None = None


def before_experiment_control(
    context: dict[str, Any], targets: str | None = None, **kwargs: Any
) -> None:
    """Start a drill for the experiment unless one is running (pytest's).

    :param context: the experiment.
    :param targets: the targets file; default ``fixtures/targets.yaml`` if it exists.
    :raises chaoslib.exceptions.InterruptExecution: when the drill cannot start; chaoslib
        then ends the run as ``interrupted`` with this message.
    """
    global _standalone
    if _context.is_active():
        return
    from chaoslib.exceptions import InterruptExecution

    from pytest_drdrill.chaostoolkit.experiment import drill_settings
    from pytest_drdrill.chaostoolkit.standalone import StandaloneDrill
    from pytest_drdrill.errors import DrillError

    title = str(context.get("title", "experiment"))
    try:
        settings = drill_settings(
            context, f"experiment {title!r}", scenario=re.sub(r"[^a-z0-9]+", "-", title.lower())
        )
        standalone = StandaloneDrill(settings, targets_file=_targets_file(targets), name=title)
        logger.info("pytest-drdrill: starting the local two-region topology")
        drill = standalone.start()
    except (DrillError, OSError) as exc:
        raise InterruptExecution(f"pytest-drdrill could not start the drill: {exc}") from exc
    _standalone = standalone
    _context.activate(drill)
    logger.info(
        "pytest-drdrill: steady state reached; PostgreSQL served by %s", drill.topology.primary.name
    )


def after_experiment_control(
    context: dict[str, Any], state: dict[str, Any], targets: str | None = None, **kwargs: Any
) -> None:
    """Measure and judge the drill this control started, record it in the journal, stop it.

    :param context: the experiment.
    :param state: the journal; gets ``drdrill``, and ``deviated`` when the drill is not green.
    :param targets: unused here; chaoslib passes every control argument to every hook.
    """
    standalone = _standalone
    if standalone is None:
        return
    from pytest_drdrill.chaostoolkit.experiment import measurement
    from pytest_drdrill.results import Verdict

    try:
        result = standalone.conclude()
        state["drdrill"] = measured = measurement(result)
        if result is None:
            return
        if standalone.targets_file is None:
            measured["verdict"] = None
            measured["reason"] = (
                f"measured, not judged: no targets file (give the control a 'targets' "
                f"argument or run where {DEFAULT_TARGETS} exists)"
            )
        elif result.verdict is not Verdict.PASS and result.verdict is not Verdict.WARN:
            if not (result.negative_control and result.verdict is Verdict.FAIL):
                state["deviated"] = True
        logger.info(
            "pytest-drdrill: drill %s: %s (%s)",
            result.scenario,
            measured["verdict"],
            measured["reason"],
        )
    except Exception:  # chaoslib would hide it at debug level
        logger.exception("pytest-drdrill: measuring the drill failed")
        state["deviated"] = True
    finally:
        _close()


def cleanup_control() -> None:
    """Stop whatever the control started, if the run ended before ``after`` ran."""
    _close()


def _close() -> None:
    global _standalone
    standalone, _standalone = _standalone, None
    if standalone is not None:
        _context.deactivate()
        standalone.close()
        logger.info("pytest-drdrill: topology stopped and removed")


def _targets_file(targets: str | None) -> Path | None:
    if targets is not None:
        path = Path(targets)
        if not path.is_file():
            from pytest_drdrill.errors import DrillError

            raise DrillError(f"the control's 'targets' argument names {path}, which does not exist")
        return path
    return DEFAULT_TARGETS if DEFAULT_TARGETS.is_file() else None
