"""What some tests and options need beyond the drills: a browser, a Pushgateway, hypothesis.

.. versionadded:: 0.6
"""

from __future__ import annotations

import importlib.util
from importlib import metadata

from pytest_drdrill.doctor.finding import Finding, find, program, script, version


def browser() -> Finding:
    """Chromium, chromedriver and selenium, for the test that opens report.html."""
    fix = script("bootstrap", "apt-get install -y chromium chromium-driver")
    missing = [name for name in ("chromium", "chromedriver") if find(name) is None]
    if importlib.util.find_spec("selenium") is None:
        missing.append("the selenium package")
        fix = "pip install selenium" if len(missing) == 1 else f"{fix} && pip install selenium"
    if missing:
        return Finding(
            "Chromium (browser test)", ok=False, detail=f"missing {', '.join(missing)}", fix=fix
        )
    chromium = find("chromium") or "chromium"
    return Finding(
        "Chromium (browser test)",
        ok=True,
        detail=f"{version([chromium, '--version']) or 'version unknown'}: {chromium}",
    )


def pushgateway() -> Finding:
    """Prometheus's Pushgateway, which the --drill-pushgateway test pushes to."""
    return program(
        "Pushgateway",
        "prometheus-pushgateway",
        script("bootstrap", "apt-get install -y prometheus-pushgateway"),
    )


def hypothesis() -> Finding:
    """hypothesis, which draws the fault-schedules drill's schedules."""
    try:
        found = metadata.version("hypothesis")
    except metadata.PackageNotFoundError:
        return Finding(
            "hypothesis (fault schedules)",
            ok=False,
            detail="not installed",
            fix="pip install 'pytest-drdrill[schedules]'",
        )
    return Finding("hypothesis (fault schedules)", ok=True, detail=found)
