"""Run the fault proxy: ``python -m pytest_drdrill.proxy [--ready-file PATH]``."""

from __future__ import annotations

import sys

from pytest_drdrill.proxy.server import main

if __name__ == "__main__":
    sys.exit(main())
