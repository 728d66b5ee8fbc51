"""Chaos Toolkit, both ways: pytest-drdrill as an extension, and experiments as drills.

- :mod:`~pytest_drdrill.chaostoolkit.actions` and :mod:`~pytest_drdrill.chaostoolkit.probes`
  are python providers (``module``, ``func``, ``arguments``) that ``chaos run`` calls;
  ``chaos discover pytest-drdrill`` lists them (:mod:`~pytest_drdrill.chaostoolkit.discovery`).
- :mod:`~pytest_drdrill.chaostoolkit.control` is a Chaos Toolkit control: under ``chaos run``
  it brings up the local two-region topology, the measuring workloads and the reference
  orchestrator, measures RTO/RPO from the clients' history and puts them in the journal.
- :mod:`~pytest_drdrill.chaostoolkit.collect` collects experiment files under ``scenarios/``
  as drills that chaoslib runs against the ``drdrill`` fixture's topology.

chaoslib's untyped experiment and journal dictionaries stay inside this package.

.. versionadded:: 0.4
"""

from __future__ import annotations
