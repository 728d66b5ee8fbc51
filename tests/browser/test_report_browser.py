"""Open report.html in a real headless Chromium and check that its plots really render.

Needs Debian's ``chromium`` and ``chromium-driver`` packages. Without them the test is
skipped, unless ``DRDRILL_REQUIRE_BROWSER=1`` (as CI sets) turns the skip into a failure.
Selenium is pointed at both binaries explicitly, so Selenium Manager never downloads one.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pytest_drdrill.reporting import plots
from pytest_drdrill.reporting.html import write_html
from report_samples import add_timeline, example, trend

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Tall enough for the tallest timeline, so element screenshots hold the whole plot.
WINDOW = (1400, 1800)


def require_browser() -> None:
    """Skip (or, under DRDRILL_REQUIRE_BROWSER=1, fail) when no browser can be driven."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install selenium)")
    if not missing:
        return
    message = (
        f"cannot run the browser test: {', '.join(missing)} missing; "
        "install with `apt-get install chromium chromium-driver`"
    )
    if os.environ.get("DRDRILL_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " (DRDRILL_REQUIRE_BROWSER=1 forbids skipping)", pytrace=False)
    pytest.skip(message)


def document_and_trend() -> tuple[dict[str, Any], dict[str, Any]]:
    """The example run, all drills but the last with a timeline, plus a regressed trend."""
    document = example()
    for drill in document["drills"][:-1]:
        add_timeline(drill)
    return document, trend(regressed=True)


def rgb(colour: str) -> tuple[int, int, int]:
    """Turn ``#rrggbb`` into a tuple."""
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def count_near(image: Any, colour: str, tolerance: int = 3) -> int:
    """Count the pixels within *tolerance* of *colour* on every channel."""
    target = rgb(colour)
    return sum(
        count
        for count, pixel in image.getcolors(maxcolors=1 << 24)
        if all(abs(a - b) <= tolerance for a, b in zip(pixel, target, strict=True))
    )


def test_plots_render_in_headless_chromium(tmp_path: Path) -> None:
    """Every plot is displayed, drawn in colour, shades its fault window; the page loads nothing."""
    require_browser()
    import psutil
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    document, trend = document_and_trend()
    report = write_html(tmp_path, document, trend=trend)

    with tempfile.TemporaryDirectory(prefix="drdrill-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            # Belt and braces: should anything in the page or the browser still try to
            # reach a host, the name does not resolve.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
        ):
            options.add_argument(argument)
        service = Service(executable_path=str(CHROMEDRIVER))
        driver = webdriver.Chrome(service=service, options=options)
        assert service.process is not None
        browser_processes = psutil.Process(service.process.pid).children(recursive=True)
        try:
            driver.get(report.as_uri())
            assert "Drill report" in driver.title
            # A self-contained page fetches no resource at all, not even from disk.
            fetched = driver.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)"
            )
            assert fetched == []

            figures = driver.find_elements(By.CSS_SELECTOR, "figure.plot")
            assert len(figures) == len(document["drills"]) + len(trend["scenarios"])
            for number, figure in enumerate(figures):
                kind = figure.get_attribute("data-plot")
                svg = figure.find_element(By.CSS_SELECTOR, "svg")
                assert svg.is_displayed(), f"plot {number} ({kind}) is hidden"
                assert svg.size["width"] > 300 and svg.size["height"] > 100, svg.size
                image = Image.open(io.BytesIO(svg.screenshot_as_png)).convert("RGB")
                assert abs(image.height - svg.size["height"]) <= 2, "plot cut by the viewport"
                image.save(tmp_path / f"plot-{number}-{kind}.png")
                colours = image.getcolors(maxcolors=1 << 24)
                white = sum(count for count, pixel in colours if min(pixel) >= 250)
                drawn = 1 - white / (image.width * image.height)
                assert drawn > 0.03, f"plot {number} ({kind}) is almost blank: {drawn:.1%}"
                assert len(colours) > 20, f"plot {number} ({kind}) has {len(colours)} colours"
                if kind == "timeline":
                    # The band is large and opaque: hundreds of pixels of exactly its colour.
                    assert count_near(image, plots.FAULT_COLOUR) > 500, number
                    has_timeline = "timeline" in document["drills"][number]
                    assert (count_near(image, plots.UP_COLOUR) > 500) == has_timeline, number
                else:
                    assert count_near(image, plots.FAULT_COLOUR) == 0
                    assert count_near(image, plots.DOWN_COLOUR, tolerance=10) > 20

            full = tmp_path / "report-full.png"
            shot = driver.execute_cdp_cmd(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
            )
            full.write_bytes(base64.b64decode(shot["data"]))
            with Image.open(full) as page:
                assert page.format == "PNG"
                assert page.height > 2 * WINDOW[1], "expected the whole page, not the viewport"
        finally:
            driver.quit()
            _gone, alive = psutil.wait_procs(browser_processes, timeout=15)
            for process in alive:
                process.kill()
        assert not alive, f"browser processes outlived driver.quit(): {alive}"
