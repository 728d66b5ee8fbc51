"""The keys under which a run keeps its drill state in pytest's stashes.

Kept apart from the ``pytest11`` entry point so that extensions (the Chaos Toolkit
collector) read the run's settings and report collector without importing the plugin
module, which imports them in turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_drdrill.assembly import NotifySetup
    from pytest_drdrill.backup.keys import KeyRing
    from pytest_drdrill.config import DrillConfig
    from pytest_drdrill.ha._protocol import PostgresHA
    from pytest_drdrill.marker import DrillSpec
    from pytest_drdrill.reporting.collector import DrillReporter
    from pytest_drdrill.targets import Targets
    from pytest_drdrill.topology.autofailover_settings import AutofailoverSettings
    from pytest_drdrill.topology.patroni_settings import PatroniSettings
    from pytest_drdrill.topology.repmgr_settings import RepmgrSettings

#: ``config.stash``: the validated settings of the run (every run, drills or not).
config_key: pytest.StashKey[DrillConfig] = pytest.StashKey()
#: ``config.stash``: the targets file, read when ``--drill`` runs drills.
targets_key: pytest.StashKey[Targets] = pytest.StashKey()
#: ``config.stash``: the report collector (on xdist workers, the one that hands results over).
reporter_key: pytest.StashKey[DrillReporter] = pytest.StashKey()
#: ``item.stash``: the drill a marked item declares.
drill_spec_key: pytest.StashKey[DrillSpec] = pytest.StashKey()
#: ``config.stash``: sinks, templates and plan, checked before any drill starts.
notify_key: pytest.StashKey[NotifySetup] = pytest.StashKey()
#: ``config.stash``: the backup key ring, and whether it is a throwaway one.
backup_keys_key: pytest.StashKey[tuple[KeyRing, bool]] = pytest.StashKey()
#: ``config.stash``: the team's Patroni settings (``--drill-patroni-config``), checked.
patroni_settings_key: pytest.StashKey[PatroniSettings | None] = pytest.StashKey()
#: ``config.stash``: the team's repmgr settings (``--drill-repmgr-config``), checked.
repmgr_settings_key: pytest.StashKey[RepmgrSettings | None] = pytest.StashKey()
#: ``config.stash``: the team's pg_auto_failover settings (``--drill-pg-auto-failover-config``).
autofailover_settings_key: pytest.StashKey[AutofailoverSettings | None] = pytest.StashKey()
#: ``item.stash``: the HA stack running this drill's PostgreSQL failover.
ha_key: pytest.StashKey[PostgresHA] = pytest.StashKey()
