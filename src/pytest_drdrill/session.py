"""What a drill run reads and checks once, at ``pytest_configure``, kept in pytest's stash.

The backend ``auto`` picks, the targets file, the backup keys and the notification sinks
are all settled before any server starts, so a bad setting is a usage error naming its
flag and ini key, not a red drill an hour into the run. The fixtures read the results
back through these functions.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from pytest_drdrill.stash import (
    backup_keys_key,
    config_key,
    notify_key,
    reporter_key,
    targets_key,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_drdrill.backup.keys import KeyRing
    from pytest_drdrill.config import DrillConfig
    from pytest_drdrill.proxy.identity import FaultProxyIdentity
    from pytest_drdrill.targets import Targets
    from pytest_drdrill.topology.autofailover_settings import AutofailoverSettings
    from pytest_drdrill.topology.patroni_settings import PatroniSettings
    from pytest_drdrill.topology.repmgr_settings import RepmgrSettings

_T = TypeVar("_T")


def with_auto_backend(drill_config: DrillConfig) -> DrillConfig:
    """``drill_config`` with ``--drill-backend=auto`` resolved: Docker when it can run, else local.

    Resolved once per run, so the header and every drill name the same backend.
    """
    from pytest_drdrill.topology.backend import resolve_auto

    choice = resolve_auto(dict(drill_config.docker_images))
    return dataclasses.replace(
        drill_config, backend_choice=choice.name, backend_reason=choice.reason
    )


def with_targets_file(drill_config: DrillConfig) -> DrillConfig:
    """``drill_config`` with its targets file settled.

    A project that names no file and has none at the default path is judged against the
    requirements' tables shipped with the package, so a first drill runs with no setup; a
    file that is named but missing stays an error (:func:`load_targets`), since a typo
    there must not silently judge drills against other targets.
    """
    if drill_config.targets_explicit or drill_config.targets.is_file():
        return drill_config
    from pytest_drdrill.targets import PACKAGED_TARGETS

    return dataclasses.replace(drill_config, targets=PACKAGED_TARGETS, targets_packaged=True)


def targets_header(drill_config: DrillConfig) -> str:
    """The run header's words for the targets file in use."""
    if drill_config.targets_packaged:
        return "targets: packaged defaults (requirements tables)"
    return f"targets: {drill_config.targets}"


def fault_proxy(drill_config: DrillConfig) -> FaultProxyIdentity:
    """The fault proxy the run's backend will use, for the header printed before it starts.

    Asked of a backend made for the question alone: :meth:`Backend.fault_proxy
    <pytest_drdrill.topology.backend.Backend.fault_proxy>` starts nothing and writes
    nowhere, so the directory it is given is never used.
    """
    from pytest_drdrill.assembly import backend_for

    backend = backend_for(drill_config, Path(tempfile.gettempdir()), run_id=None)
    return backend.fault_proxy()


def load_targets(drill_config: DrillConfig) -> Targets:
    """The targets file ``--drill-targets`` names, read and validated.

    :raises pytest.UsageError: when it is missing or invalid, saying how to fix it.
    """
    from pytest_drdrill.errors import InvalidTargets
    from pytest_drdrill.targets import load_targets as load

    path = drill_config.targets
    if not path.is_file():
        raise pytest.UsageError(
            f"drill targets file {path} does not exist. Point --drill-targets / ini "
            f"drill_targets at yours, write a starter one with `pytest --drill-init`, or set "
            f"neither to use the requirements' tables shipped with pytest-drdrill."
        )
    try:
        return load(path)
    except InvalidTargets as exc:
        raise pytest.UsageError(str(exc)) from None


def check_backup_keys(config: pytest.Config) -> None:
    """Read a configured backup key now: it must be usable before any server starts."""
    drill_config = config.stash[config_key]
    if drill_config.backup_key_file is not None or os.environ.get("DRDRILL_BACKUP_KEY"):
        backup_keys(config)


def backup_keys(config: pytest.Config) -> tuple[KeyRing, bool]:
    """The run's backup key ring, read once, and whether it is a throwaway one.

    :raises pytest.UsageError: when a configured key is unusable.
    """
    if backup_keys_key in config.stash:
        return config.stash[backup_keys_key]
    from pytest_drdrill.backup.errors import InvalidKey
    from pytest_drdrill.backup.keys import drill_keyring

    try:
        keys = drill_keyring(config.stash[config_key].backup_key_file)
    except InvalidKey as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[backup_keys_key] = keys
    return keys


def check_notify(config: pytest.Config, drill_config: DrillConfig) -> None:
    """Check the notification sinks and templates once, before any drill starts.

    :raises pytest.UsageError: naming the bad sink or template.
    """
    from pytest_drdrill.assembly import notify_setup
    from pytest_drdrill.notify import SinkSpecError, TemplateError

    try:
        setup = notify_setup(drill_config, config.stash[targets_key], run_id(config))
    except (SinkSpecError, TemplateError) as exc:
        raise pytest.UsageError(str(exc)) from None
    if setup is not None:
        config.stash[notify_key] = setup


def run_id(config: pytest.Config) -> str | None:
    """The run's id (an xdist worker's is its controller's); ``None`` without drills."""
    reporter = config.stash.get(reporter_key, None)
    return reporter.run_id if reporter is not None else None


def load_patroni_settings(drill_config: DrillConfig) -> PatroniSettings | None:
    """The team's Patroni settings file, checked against the Patroni that will run them.

    :raises pytest.UsageError: naming the file, the key and the fix.
    """
    path = drill_config.patroni_config
    if path is None:
        return None
    from pytest_drdrill.errors import DrillError
    from pytest_drdrill.topology.patroni import patroni_version
    from pytest_drdrill.topology.patroni_settings import load_settings

    try:
        version = patroni_version(drill_config.patroni_bin)
        return load_settings(path, patroni_version=version)
    except DrillError as exc:
        raise pytest.UsageError(
            f"--drill-patroni-config / ini drill_patroni_config: {exc}"
        ) from None


def load_autofailover_settings(drill_config: DrillConfig) -> AutofailoverSettings | None:
    """The team's pg_auto_failover settings file, checked before any cluster starts.

    :raises pytest.UsageError: naming the file, the key and the fix.
    """
    path = drill_config.pg_auto_failover_config
    if path is None:
        return None
    from pytest_drdrill.topology.autofailover_settings import load_settings

    return _as_usage_error("drill_pg_auto_failover_config", lambda: load_settings(path))


def load_repmgr_settings(drill_config: DrillConfig) -> RepmgrSettings | None:
    """The team's repmgr settings file, checked before any cluster starts.

    :raises pytest.UsageError: naming the file, the key and the fix.
    """
    path = drill_config.repmgr_config
    if path is None:
        return None
    from pytest_drdrill.topology.repmgr_settings import load_settings

    return _as_usage_error("drill_repmgr_config", lambda: load_settings(path))


def _as_usage_error(ini: str, load: Callable[[], _T]) -> _T:
    """``load()``, its :class:`DrillError` turned into a usage error naming flag and ini key."""
    from pytest_drdrill.errors import DrillError

    try:
        return load()
    except DrillError as exc:
        flag = "--" + ini.replace("_", "-")
        raise pytest.UsageError(f"{flag} / ini {ini}: {exc}") from None
