"""Report writers for a drill run: ``drill.json`` and ``drill-junit.xml``.

.. versionadded:: 0.1
"""

from __future__ import annotations

from pytest_drdrill.reporting.drill_json import SCHEMA_VERSION, drill_to_dict, load_schema
from pytest_drdrill.reporting.junit import write_junit

__all__ = ["SCHEMA_VERSION", "drill_to_dict", "load_schema", "write_junit"]
