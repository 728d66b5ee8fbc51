"""``python -m pytest_drdrill doctor``: what this machine has for drills, and what it lacks.

A new user's first question is why a drill cannot start. The doctor answers it before
any drill runs: per backend, HA stack, backup tool and test integration, each part is
OK or MISSING with the command that fixes it. It finds servers with the same code the
drills use (:mod:`pytest_drdrill.topology`), so the two never disagree. One module per
area: :mod:`~pytest_drdrill.doctor.local` (what the default drills need),
:mod:`~pytest_drdrill.doctor.ha`, :mod:`~pytest_drdrill.doctor.docker`,
:mod:`~pytest_drdrill.doctor.backup_tools`, :mod:`~pytest_drdrill.doctor.extras`;
:mod:`~pytest_drdrill.doctor.report` runs them and prints.

.. versionadded:: 0.6
"""

from __future__ import annotations

from pytest_drdrill.doctor.finding import Finding, Settings

__all__ = ["Finding", "Settings"]
