"""HA stacks under test: who fails PostgreSQL over in a drill (``--drill-postgres-failover``).

One provider per module behind :class:`~pytest_drdrill.ha._protocol.PostgresHA`:
:mod:`~.reference` (the drill's own orchestrator and failover hooks),
:mod:`~.patroni`, :mod:`~.repmgr` and :mod:`~.pg_auto_failover`. A new HA stack is one
module and one entry in :data:`PROVIDERS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_drdrill.options import POSTGRES_FAILOVERS

if TYPE_CHECKING:
    from pytest_drdrill.ha._protocol import PostgresHA
    from pytest_drdrill.topology.autofailover_settings import AutofailoverSettings
    from pytest_drdrill.topology.patroni_settings import PatroniSettings
    from pytest_drdrill.topology.repmgr_settings import RepmgrSettings

#: The ``--drill-postgres-failover`` values, the default first.
PROVIDERS = POSTGRES_FAILOVERS


def make_provider(
    name: str,
    *,
    patroni_settings: PatroniSettings | None = None,
    patroni_bin: str | None = None,
    repmgr_settings: RepmgrSettings | None = None,
    autofailover_settings: AutofailoverSettings | None = None,
) -> PostgresHA:
    """The provider ``name`` names.

    :raises ValueError: for an unknown name (the option's check names the flag first).
    """
    if name == "reference":
        from pytest_drdrill.ha.reference import ReferenceHA

        return ReferenceHA()
    if name == "patroni":
        from pytest_drdrill.ha.patroni import PatroniHA

        return PatroniHA(patroni_settings, patroni_bin)
    if name == "repmgr":
        from pytest_drdrill.ha.repmgr import RepmgrHA

        return RepmgrHA(repmgr_settings.nodes if repmgr_settings is not None else None)
    if name == "pg_auto_failover":
        from pytest_drdrill.ha.pg_auto_failover import AutofailoverHA

        return AutofailoverHA(
            autofailover_settings.cluster_kwargs() if autofailover_settings is not None else None
        )
    raise ValueError(f"unknown HA stack {name!r}; choose one of {', '.join(PROVIDERS)}")
