"""pytest entry point of pytest-drdrill (``pytest11``: ``drdrill``): options and hooks.

The ``drdrill*`` fixtures are in :mod:`pytest_drdrill.fixtures`, loaded with this module
through ``pytest_plugins`` (whether it came from the entry point or from ``-p``).

Imports nothing heavy at module level: a plain ``pytest`` run without ``--drill`` must
stay fast, so topology, proxy and report code are imported inside the hooks that use them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_drdrill import hookspecs, session
from pytest_drdrill.config import backend_name, get_config
from pytest_drdrill.marker import MARKER, MARKER_HELP, skip_reason, spec_for
from pytest_drdrill.options import add_options
from pytest_drdrill.stash import (
    autofailover_settings_key,
    config_key,
    drill_spec_key,
    patroni_settings_key,
    repmgr_settings_key,
    reporter_key,
    targets_key,
)

# The fixtures are a plugin of their own: pytest loads the modules a plugin lists here
# along with it, whether it came from the entry point or from -p (and -p no:drdrill
# leaves both out).
pytest_plugins = ["pytest_drdrill.fixtures"]


# --- options, hooks, configuration ------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--drill`` and the ``--drill-*`` flags with their ini keys."""
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--drill-init``: write the starter project, say what was written, run no tests."""
    if not config.getoption("drill_init", False):
        return None
    from pytest_drdrill.starter import StarterExists, write_starter

    project = Path.cwd()
    try:
        written = write_starter(project)
    except StarterExists as exc:
        raise pytest.UsageError(str(exc)) from None
    for path in written:
        print(f"drdrill: wrote {path.relative_to(project)}")
    print("drdrill: run the example drill with: pytest --drill=monthly")
    return 0


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """``--drill-library``: the installed scenario library joins the paths to collect.

    Added to the arguments before pytest reads them as paths, so ``-k``, ``--drill=`` and
    every other selection apply to the library's drills as to the project's own. The
    rootdir stays the project's: it was found from the arguments as given.
    """
    if not getattr(early_config.known_args_namespace, "drill_library", False):
        return
    from pytest_drdrill.library import __file__ as library_init

    args.append(str(Path(library_init).parent))


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the ``pytest_drdrill_*`` hook specifications."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    """Validate options and targets, register the marker, the reference failover, the reporter."""
    config.addinivalue_line("markers", MARKER_HELP)
    if config.getoption("help", False):
        return  # --help must work even with a bad option value, to show the valid ones
    drill_config = get_config(config)
    config.stash[config_key] = drill_config
    if drill_config.cadence is None:
        return
    if drill_config.backend == "auto":
        drill_config = config.stash[config_key] = session.with_auto_backend(drill_config)
    drill_config = config.stash[config_key] = session.with_targets_file(drill_config)
    config.stash[targets_key] = session.load_targets(drill_config)
    config.stash[patroni_settings_key] = session.load_patroni_settings(drill_config)
    config.stash[repmgr_settings_key] = session.load_repmgr_settings(drill_config)
    config.stash[autofailover_settings_key] = session.load_autofailover_settings(drill_config)
    session.check_backup_keys(config)

    from pytest_drdrill.recovery.patroni_region import PatroniRegionFailover
    from pytest_drdrill.recovery.reference import ReferenceFailover
    from pytest_drdrill.reporting.collector import DrillReporter

    # Acts only on drills whose topology runs Patroni. Both are trylast: registered first,
    # it is called after a team's conftest implementation and before the reference.
    config.pluginmanager.register(PatroniRegionFailover(), "drdrill-patroni-region-failover")
    config.pluginmanager.register(ReferenceFailover(), "drdrill-reference-failover")
    from pytest_drdrill.backup.pitr import ReferenceRestore

    config.pluginmanager.register(ReferenceRestore(), "drdrill-reference-restore")
    # On an xdist worker too: it hands its results to the controller's, which writes.
    reporter = DrillReporter(config, drill_config, config.stash[targets_key])
    config.stash[reporter_key] = reporter
    config.pluginmanager.register(reporter, "drdrill-reporter")
    session.check_notify(config, drill_config)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Unregister the reporter."""
    reporter = config.stash.get(reporter_key, None)
    if reporter is not None:
        del config.stash[reporter_key]
        config.pluginmanager.unregister(reporter)


# --- collection: which drills run ---------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect Chaos Toolkit experiments (``experiment-*.json|yaml|yml``) as drills."""
    if not file_path.name.startswith("experiment-"):
        return None  # chaoslib is imported only for experiment files
    from pytest_drdrill.chaostoolkit.collect import pytest_collect_file as collect_experiment

    return collect_experiment(file_path, parent)


_REPEAT_FIXTURE = "drdrill_repeat"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each drill ``--drill-repeat`` times, with ids ``r1``, ``r2``… for RTO p50/p95."""
    drill_config = metafunc.config.stash.get(config_key, None)
    if drill_config is None or drill_config.repeat < 2:
        return
    if metafunc.definition.get_closest_marker(MARKER) is None:
        return
    metafunc.fixturenames.append(_REPEAT_FIXTURE)
    metafunc.parametrize(
        _REPEAT_FIXTURE,
        range(1, drill_config.repeat + 1),
        indirect=True,
        ids=lambda n: f"r{n}",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip drills outside the selected cadence, and negative controls when asked to."""
    drill_config = config.stash[config_key]
    plans = []
    for item in items:
        if item.get_closest_marker(MARKER) is None:
            continue
        spec = spec_for(item, config.stash.get(targets_key, None), drill_config.guardrails)
        item.stash[drill_spec_key] = spec
        reason = skip_reason(spec, drill_config)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
        elif drill_config.dry_run:
            from pytest_drdrill.dry_run import plan_for

            plans.append(plan_for(item, spec))
    if drill_config.dry_run:
        from pytest_drdrill.dry_run import render

        terminal = config.pluginmanager.get_plugin("terminalreporter")
        for line in render(plans, drill_config):
            if terminal is not None:
                terminal.write_line(line)
        config.hook.pytest_deselected(items=list(items))
        items[:] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """A dry run ran nothing on purpose: that is success, not pytest's 'no tests' (5)."""
    drill_config = session.config.stash.get(config_key, None)
    if drill_config is not None and drill_config.dry_run and session.exitstatus == 5:
        session.exitstatus = 0


# --- the run's header ----------------------------------------------------------------------------


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """Say which backend and fault proxy drills run on (and why), who fails over, the targets."""
    drill_config = config.stash.get(config_key, None)
    if drill_config is None or drill_config.cadence is None:
        return None
    reason = f" ({drill_config.backend_reason})" if drill_config.backend_reason else ""
    return [
        f"drdrill: backend {backend_name(drill_config)}{reason}, "
        f"fault proxy {session.fault_proxy(drill_config)}",
        f"drdrill: postgres failover {drill_config.postgres_failover}"
        + (
            f", backup tool {drill_config.backup_tool}"
            if drill_config.backup_tool != "builtin"
            else ""
        ),
        f"drdrill: {session.targets_header(drill_config)}",
    ]
