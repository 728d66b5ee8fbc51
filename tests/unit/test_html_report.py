"""Tests for the self-contained HTML drill report and its plots."""

from __future__ import annotations

import copy
import html
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_drdrill.durations import format_duration
from pytest_drdrill.reporting import plots
from pytest_drdrill.reporting.html import FILENAME, render_html, write_html
from report_samples import BUCKET, add_timeline, example, trend

ROOT = Path(__file__).resolve().parents[2]
# Real runs of this checkout, when there are any (reports/ is not committed).
REAL_REPORTS = sorted(ROOT.glob("reports/*/drill.json"))
XSS = "<script>alert(1)</script> & \"quoted\" 'single'"


def full_document(drills: int | None = None) -> dict[str, Any]:
    """The example run (its first *drills* drills) with this release's optional keys filled in."""
    document = example()
    document["drills"] = document["drills"][:drills]
    for drill in document["drills"]:
        add_timeline(drill)
    first = document["drills"][0]
    first["resources"] = {
        "processes": 14,
        "pss_bytes": 412 * 1024 * 1024,
        "nodes": [{"node": "pg-primary", "processes": 6, "pss_bytes": 96 * 1024 * 1024}],
    }
    first["notifications"] = [
        {
            "template": "internal_alert",
            "audience": "immediate_team",
            "sink": "file:reports/notifications.jsonl",
            "sent_offset_seconds": 2.5,
            "seconds_after_incident": 0.6,
            "within_seconds": 300.0,
            "delivered": True,
            "approval": None,
            "verdict": "pass",
            "detail": "delivered",
        },
        {
            "template": "customer_notification",
            "audience": "customers",
            "sink": "http://127.0.0.1:9/hook",
            "sent_offset_seconds": None,
            "seconds_after_incident": None,
            "within_seconds": 3600.0,
            "delivered": False,
            "approval": None,
            "verdict": "fail",
            "detail": "no approval within the deadline",
        },
    ]
    return document


@pytest.fixture(scope="module")
def page() -> str:
    """The whole example run, with a regressed trend: rendered once for the read-only tests."""
    return render_html(full_document(), trend=trend(regressed=True))


def svg_of(text: str) -> str:
    """Return the first inline plot in *text*."""
    return text[text.index("<svg") : text.index("</svg>")]


def sections(page: str) -> dict[str, str]:
    """Split the page into each drill's section, keyed by its anchor."""
    parts = re.split(r'(?=<section class="drill[^"]*" id="drill-\d+">)', page)
    found = {}
    for part in parts[1:]:
        anchor = re.match(r'<section class="drill[^"]*" id="(drill-\d+)">', part)
        assert anchor is not None
        found[anchor.group(1)] = part.split("</section>")[0]
    return found


def section_of(page: str, element_id: str) -> str:
    """Return the text of the top-level section with the given id."""
    start = page.rindex("<section", 0, page.index(f'id="{element_id}"'))
    return page[start : page.index("</section>", start)]


def test_every_drill_gets_exactly_one_timeline_plot(page: str) -> None:
    """Each drill's section holds one inline <svg>; the only other plot is the trend's."""
    drills = len(example()["drills"])
    found = sections(page)
    assert list(found) == [f"drill-{i}" for i in range(1, drills + 1)]
    for text in found.values():
        assert text.count("<svg") == 1
        assert plots.FAULT_COLOUR in svg_of(text)
    assert page.count("<svg") == drills + 1


@pytest.mark.parametrize("path", REAL_REPORTS, ids=[p.parent.name for p in REAL_REPORTS])
def test_real_reports_render(path: Path) -> None:
    """Every drill.json this checkout has produced renders, one plot per drill."""
    document = json.loads(path.read_text("utf-8"))
    page = render_html(document)
    assert page.count("<svg") == len(document["drills"])
    assert f"<code>{html.escape(document['run']['id'])}</code>" in page


def test_the_page_references_nothing_outside_itself(page: str) -> None:
    """No script, stylesheet, font or image is loaded from anywhere; links stay in the page."""
    lowered = page.lower()
    for forbidden in ('src="http', 'href="http', "<link", "<script", "@import", "url(http"):
        assert forbidden not in lowered, forbidden
    assert " src=" not in lowered
    hrefs = re.findall(r'\bhref="([^"]*)"', page)
    assert hrefs, "the page should link its own sections"
    assert all(href.startswith("#") for href in hrefs), hrefs
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "ids must be unique across the inline plots"
    for target in re.findall(r'(?:href="#|url\(#)([^")]+)', page):
        assert target in ids, target


def test_document_text_is_escaped_everywhere() -> None:
    """Reasons, details and names holding markup reach the page as text, tables and plots alike."""
    document = full_document(2)
    drill = document["drills"][0]
    drill["reason"] = XSS
    drill["phases"][0]["detail"] = XSS
    drill["phases"][1]["name"] = "<img onerror=x>"
    drill["lag"][0]["node"] = "<b>node</b>"
    drill["notes"] = [XSS]
    drill["notifications"][0]["detail"] = XSS
    document["run"]["versions"]["<i>tool</i>"] = "1.0"
    page = render_html(document, trend=trend(regressed=True))
    assert "<script" not in page
    assert "<img" not in page
    assert "<b>node</b>" not in page
    assert "<i>tool</i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quoted&#34; &#39;single&#39;" in page
    # The plot labels come from the document too: matplotlib must have escaped them.
    plot = sections(page)["drill-1"]
    assert "&lt;img onerror=x&gt;" in plot
    assert "&lt;b&gt;node&lt;/b&gt;" in plot


def test_negative_control_that_went_red_is_shown_as_required() -> None:
    """A failing negative control reads "went red as required" and does not fail the run."""
    document = full_document(3)
    control = document["drills"][-1]
    control.update(negative_control=True, verdict="fail", expected_verdict="fail")
    control["reason"] = "service did not recover within the observation window"
    page = render_html(document)
    controls = section_of(page, "controls")
    assert control["scenario"] in controls
    assert "WENT RED AS REQUIRED" in controls
    assert "DID NOT GO RED" not in page
    # The control is listed apart, not among the drills judged against targets.
    assert f'href="#drill-{len(document["drills"])}"' not in section_of(page, "summary")
    verdict = re.search(r'<p class="overall overall-(\w+)"', page)
    assert verdict is not None and verdict.group(1) == "pass"
    assert "1 of 1 negative controls went red as required" in page


def test_negative_control_that_stayed_green_fails_the_run() -> None:
    """A negative control whose verdict is not the expected red is a failure of the run."""
    document = full_document(2)
    document["drills"][-1].update(negative_control=True, verdict="pass")
    page = render_html(document)
    assert "DID NOT GO RED" in section_of(page, "controls")
    verdict = re.search(r'<p class="overall overall-(\w+)"', page)
    assert verdict is not None and verdict.group(1) == "fail"
    assert "1 of 1 negative controls DID NOT go red" in page


def test_missing_timeline_still_plots_faults_phases_and_lag() -> None:
    """A drill from an older file gets a plot without availability panels, and a note saying so."""
    document = full_document(2)
    del document["drills"][1]["timeline"]
    found = sections(render_html(document))
    old, new = found["drill-2"], found["drill-1"]
    assert "The write timeline is missing from this report" in old
    assert "The write timeline is missing" not in new
    assert old.count("<svg") == 1
    old_plot, new_plot = svg_of(old), svg_of(new)
    assert "write timeline missing from this report" in old_plot
    assert ">detection<" in old_plot and ">fault<" in old_plot
    assert "replication lag" in old_plot
    assert "acknowledged writes per second" not in old_plot
    assert "acknowledged writes per second" in new_plot
    assert plots.UP_COLOUR in new_plot and plots.UP_COLOUR not in old_plot


def test_regression_is_flagged_prominently(page: str) -> None:
    """A regression in the trend gets a banner at the top, a marked row and a warning verdict."""
    history = trend(regressed=True)
    run_id = history["regressions"][0]["run_id"]
    banner = section_of(page, "regressions")
    assert page.index('id="regressions"') < page.index('id="summary"')
    assert history["regressions"][0]["detail"] in banner
    assert run_id in banner
    trend_section = page[page.index('<section id="trend">') :]
    assert trend_section.count("<svg") == 1
    row = re.search(r'<tr class="regressed"><th scope="row"><code>([^<]+)</code>', trend_section)
    assert row is not None and row.group(1) == run_id
    assert "REGRESSION" in row.string[row.start() : row.string.index("</tr>", row.start())]
    verdict = re.search(r'<p class="overall overall-(\w+)"', page)
    assert verdict is not None and verdict.group(1) == "warn"
    assert "RTO regression in primary-crash" in page


def test_no_regression_means_no_banner() -> None:
    """Without regressions the trend says so and no alert is raised."""
    document = full_document(1)
    page = render_html(document, trend=trend(regressed=False))
    assert 'id="regressions"' not in page
    assert 'class="regressed"' not in page
    assert "NO REGRESSION" in page
    assert 'id="trend"' in page
    assert 'id="trend"' not in render_html(document)


def test_summary_shows_rto_against_target_with_margin() -> None:
    """Measured RTO, target, max and margin come from the document; a miss is called out."""
    document = full_document(1)
    drill = document["drills"][0]
    target = drill["target"]
    page = render_html(document)
    row = section_of(page, "summary").split("</tr>")[1]
    margin = target["rto_target_seconds"] - drill["rto_seconds"]
    assert format_duration(drill["rto_seconds"]) in row
    assert (
        f"{format_duration(target['rto_target_seconds'])} "
        f"(max {format_duration(target['rto_max_seconds'])})" in row
    )
    shown = re.search(re.escape(format_duration(margin)) + r" \((-?\d+\.\d)%\)", row)
    assert shown is not None, row
    # The share left is cut, never rounded up: a sliver used must not read as 100%.
    share = 100 * margin / target["rto_target_seconds"]
    assert share - 0.1 < float(shown.group(1)) <= share
    assert "over target" not in row

    drill["rto_seconds"] = target["rto_target_seconds"] + 100.0
    drill["verdict"] = "fail"
    row = section_of(render_html(document), "summary").split("</tr>")[1]
    assert "-1m40s" in row and "over target" in row and "FAIL" in row


def test_notifications_and_resources_are_tabulated(page: str) -> None:
    """Notification timings against deadlines, approvals and memory use appear in the drill."""
    found = sections(page)
    first = found["drill-1"]
    assert "internal alert" in first and "immediate team" in first
    assert "0.60s of 5m00s allowed" in first
    assert "not sent of 1h00m00s allowed" in first
    assert "no approval within the deadline" in first
    assert "412.0 MiB" in first and "96.0 MiB" in first and "pg-primary" in first
    assert "Notifications" not in found["drill-2"]
    assert "Resources" not in found["drill-2"]


def test_business_functions_are_summed_up_over_the_run(page: str) -> None:
    """Each business function gets one run-level row naming its not-exercised dependencies."""
    document = example()
    functions = section_of(page, "functions")
    names = {f["function"] for d in document["drills"] for f in d.get("functions", [])}
    assert names
    for name in names:
        assert functions.count(f'<th scope="row">{name}</th>') == 1
    missing = {m for d in document["drills"] for f in d["functions"] for m in f["not_exercised"]}
    for dependency in missing:
        assert dependency in functions


def test_documents_from_older_versions_render() -> None:
    """A run written before services, functions, lag and notes existed still renders."""
    document = example()
    for drill in document["drills"]:
        for key in ("services", "functions", "lag", "notes"):
            drill.pop(key, None)
    page = render_html(document)
    assert page.count("<svg") == len(document["drills"])
    assert 'id="functions"' not in page
    assert page.count("The write timeline is missing from this report") == len(document["drills"])


def test_availability_judges_each_bucket() -> None:
    """Successes only, failures only, both and nothing map to 1, 0, 0.5 and blank."""
    counts = {
        "acknowledged": [3, 0, 2, 0, 0, 0],
        "failed": [0, 4, 1, 0, 0, 0],
        "indeterminate": [0, 0, 0, 0, 2, 0],
        "probes_ok": [0, 0, 0, 0, 0, 1],
        "probes_failed": [0, 0, 0, 1, 0, 0],
    }
    assert plots.availability(counts) == [1.0, 0.0, 0.5, 0.0, None, 1.0]
    assert plots.availability({"acknowledged": [1, 0]}) == [1.0, None]


def test_long_timelines_are_rebucketed() -> None:
    """A drill of fifteen minutes at 0.1 s buckets does not blow up the page."""
    drill = copy.deepcopy(example()["drills"][0])
    buckets = 9_000
    drill["duration_seconds"] = buckets * BUCKET
    drill["timeline"] = {
        "bucket_seconds": BUCKET,
        "services": {
            name: {"acknowledged": [i % 7 for i in range(buckets)], "failed": [0] * buckets}
            for name in ("postgres", "redis", "s3")
        },
    }
    short = copy.deepcopy(drill)
    short["timeline"]["services"] = {
        name: {key: values[:500] for key, values in counts.items()}
        for name, counts in drill["timeline"]["services"].items()
    }
    # Re-bucketed, 9,000 buckets draw about as many points as 500 do, not eighteen times more.
    assert len(plots.timeline_svg(drill)) < 1.5 * len(plots.timeline_svg(short))


def test_dollar_signs_are_not_read_as_mathematics() -> None:
    """Names with "$" are drawn verbatim instead of failing in matplotlib's mathtext parser."""
    drill = copy.deepcopy(example()["drills"][0])
    drill["phases"][0]["name"] = "cost $5 to $"
    drill["phases"][1]["name"] = r"$\frac{$"
    svg = plots.timeline_svg(drill)
    assert "cost $5 to $" in svg


def test_trend_plot_marks_regressed_runs() -> None:
    """The trend plot draws p50 and p95 and circles a regressed run in the alarm colour."""
    history = trend(regressed=True)
    points = history["scenarios"]["primary-crash"]
    flagged = plots.trend_svg(points, regressed={points[-1]["run_id"]})
    plain = plots.trend_svg(points)
    assert "RTO p50" in flagged and "RTO p95" in flagged
    assert plots.DOWN_COLOUR in flagged and plots.DOWN_COLOUR not in plain


def test_write_html_replaces_the_file_atomically(tmp_path: Path) -> None:
    """write_html writes report.html with the rendered page and leaves no temporary file."""
    document = full_document(1)
    (tmp_path / FILENAME).write_text("old", "utf-8")
    path = write_html(tmp_path, document)
    assert path == tmp_path / FILENAME
    assert path.read_text("utf-8") == render_html(document)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILENAME]


def test_rendering_is_deterministic() -> None:
    """The same document renders to the same bytes, so reports can be compared and cached."""
    document = full_document(2)
    assert render_html(document) == render_html(copy.deepcopy(document))


def test_a_single_drill_is_refused_with_a_hint() -> None:
    """Passing one drill instead of the whole document says what to pass."""
    with pytest.raises(ValueError, match=r"no 'run' object.*reports/<run-id>/drill.json"):
        render_html(example()["drills"][0])


def test_template_ships_as_package_data() -> None:
    """The template is found through importlib.resources, as an installed package finds it."""
    templates = importlib.resources.files("pytest_drdrill.reporting") / "templates"
    assert (templates / "report.html.j2").is_file()
    assert (templates / "report.css").is_file()
