from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_drdrill.errors import DrillError, InvalidTargets
from pytest_drdrill.results import Target
from pytest_drdrill.targets import (
    Targets,
    TargetSelectionError,
    UnknownTarget,
    load_targets,
)

SHIPPED = Path(__file__).resolve().parents[2] / "fixtures" / "targets.yaml"

VALID = """\
schema_version: 1
mtd: 20_minutes
tiers:
  tier_1_critical:
    services: [authentication]
    target: 15_minutes
    maximum_acceptable: 30_minutes
    recovery_strategy: hot_standby
  tier_3_medium:
    target: 2_hours
    maximum_acceptable: 4_hours
data_categories:
  critical_user_data:
    target: 5_minutes
    maximum_acceptable: 15_minutes
business_functions:
  user_authentication:
    criticality: critical
    tier: tier_1_critical
    data_category: critical_user_data
    rto: 15_minutes
    rpo: 5_minutes
business_dependencies:
  login_workflow:
    function: user_authentication
    depends_on: [database]
downtime_costs:
  currency: USD
  rows:
    - {duration: 1_hour, revenue_loss: 5000, productivity_loss: 2000, recovery_cost: 1000,
       total: 8000}
    - {duration: 4_hours, revenue_loss: 20000, productivity_loss: 8000, recovery_cost: 3000,
       total: 31000}
communication:
  internal:
    immediate_team:
      recipients: [on_call_engineer]
      methods: [phone_call]
      within: 5_minutes
  external:
    public:
      methods: [blog_post]
      within: as_appropriate
      approval_required: ceo_level
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _edit(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, f"test setup: {old!r} is not in the base document"
        return text.replace(old, new, 1)

    return edit


def _whole(text: str) -> Callable[[str], str]:
    return lambda _: text


@pytest.fixture
def targets(tmp_path: Path) -> Targets:
    return load_targets(_write(tmp_path, VALID))


def test_valid_file_loads(targets: Targets, tmp_path: Path) -> None:
    """The base document used by the failure cases is itself valid and read as written."""
    tier = targets.tiers["tier_1_critical"]
    assert (tier.target, tier.maximum_acceptable) == (900.0, 1_800.0)
    assert tier.services == ("authentication",)
    assert targets.tiers["tier_3_medium"].services == ()
    assert targets.tiers["tier_3_medium"].recovery_strategy == ""
    assert targets.mtd == 1_200.0
    assert targets.source == tmp_path / "targets.yaml"
    assert targets.cost_currency == "USD"
    assert targets.business_dependencies["login_workflow"].depends_on == ("database",)
    public = targets.communication["public"]
    assert (public.within, public.approval_required, public.scope) == (
        None,
        "ceo_level",
        "external",
    )
    immediate = targets.communication["immediate_team"]
    assert (immediate.within, immediate.approval_required, immediate.scope) == (
        300.0,
        False,
        "internal",
    )


def test_targets_are_read_only(targets: Targets) -> None:
    """Neither the record nor its tables can be changed after loading."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        targets.mtd = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        targets.tiers["x"] = targets.tiers["tier_1_critical"]  # type: ignore[index]


def test_optional_sections_may_be_left_out(tmp_path: Path) -> None:
    """A file with only schema_version, mtd and tiers is enough for tier drills."""
    loaded = load_targets(
        _write(
            tmp_path,
            "schema_version: 1\nmtd: 20m\ntiers:\n  t1: {target: 1m, maximum_acceptable: 2m}\n",
        )
    )
    assert loaded.resolve(tier="t1") == Target("tier", "t1", 60.0, 120.0)
    assert loaded.business_functions == {}
    assert loaded.downtime_costs == ()


BAD_CASES = [
    pytest.param(
        _edit("services: [authentication]", "services: [authentication"),
        "line 6",
        ["YAML error", "expected ',' or ']'", "flow sequence started at line 5"],
        id="yaml-syntax",
    ),
    pytest.param(
        _edit("mtd: 20_minutes\n", "mtd: 20_minutes\nmtd: 30_minutes\n"),
        "line 3",
        ["'mtd' a second time", "first on line 2"],
        id="duplicate-key",
    ),
    pytest.param(
        _whole("- tiers\n- mtd\n"),
        "top level",
        ["must be a mapping", "a list", "schema_version, mtd, tiers"],
        id="top-level-list",
    ),
    pytest.param(
        _whole(""),
        "top level",
        ["must be a mapping", "empty (null)"],
        id="empty-file",
    ),
    pytest.param(
        _edit("schema_version: 1\n", ""),
        "schema_version",
        ["required key 'schema_version' is missing", "add 'schema_version: 1'"],
        id="schema-version-missing",
    ),
    pytest.param(
        _edit("schema_version: 1", "schema_version: 2"),
        "schema_version",
        ["schema_version is 2", "reads only schema_version 1"],
        id="schema-version-2",
    ),
    pytest.param(
        _edit("schema_version: 1", "schema_version: '1'"),
        "schema_version",
        ["schema_version is '1'", "write 'schema_version: 1'"],
        id="schema-version-text",
    ),
    pytest.param(
        _edit("mtd: 20_minutes\n", ""),
        "mtd",
        ["required key 'mtd' is missing", "add 'mtd: 20_minutes'"],
        id="mtd-missing",
    ),
    pytest.param(
        _edit("mtd: 20_minutes", "mtd: soon"),
        "mtd",
        ["cannot read 'soon'", "15_minutes"],
        id="mtd-unparseable",
    ),
    pytest.param(
        _edit("tiers:", "teirs:"),
        "teirs",
        ["unknown key 'teirs'", "did you mean 'tiers'?"],
        id="unknown-section",
    ),
    pytest.param(
        _edit("tiers:\n  tier_1_critical:", "tiers: {}\nold_tiers:\n  tier_1_critical:"),
        "old_tiers",
        ["unknown key 'old_tiers'"],
        id="unknown-section-far-from-valid",
    ),
    pytest.param(
        _whole("schema_version: 1\nmtd: 20m\ntiers: {}\n"),
        "tiers",
        ["tiers is empty", "define at least one entry under tiers"],
        id="tiers-empty",
    ),
    pytest.param(
        _whole("schema_version: 1\nmtd: 20m\ntiers:\n"),
        "tiers",
        ["must be a mapping from names to entries", "empty (null)"],
        id="tiers-null",
    ),
    pytest.param(
        _edit("    maximum_acceptable: 30_minutes", "    maximun_acceptable: 30_minutes"),
        "tiers.tier_1_critical.maximun_acceptable",
        ["unknown key 'maximun_acceptable' in a tier", "did you mean 'maximum_acceptable'?"],
        id="typo-in-tier-key",
    ),
    pytest.param(
        _edit("    recovery_strategy: hot_standby\n", "    owner: alice\n"),
        "tiers.tier_1_critical.owner",
        [
            "unknown key 'owner'",
            "remove or rename it",
            "Allowed in a tier: target, maximum_acceptable, services, recovery_strategy",
        ],
        id="unknown-key-no-suggestion",
    ),
    pytest.param(
        _edit("    maximum_acceptable: 30_minutes\n", ""),
        "tiers.tier_1_critical.maximum_acceptable",
        ["required key 'maximum_acceptable' is missing", "add 'maximum_acceptable: 30_minutes'"],
        id="missing-tier-key",
    ),
    pytest.param(
        _edit("target: 15_minutes", "target: 15_minuts"),
        "tiers.tier_1_critical.target",
        ["cannot read '15_minuts' as a duration", "1h30m"],
        id="unparseable-duration",
    ),
    pytest.param(
        _edit("target: 5_minutes", "target: -5m"),
        "data_categories.critical_user_data.target",
        ["'-5m' is negative"],
        id="negative-duration",
    ),
    pytest.param(
        _edit("target: 15_minutes", "target: yes"),
        "tiers.tier_1_critical.target",
        ["expected a duration, got a boolean True"],
        id="boolean-duration",
    ),
    pytest.param(
        _edit("target: 15_minutes", "target: 45_minutes"),
        "tiers.tier_1_critical.target",
        ["target 45m00s is above maximum_acceptable 30m00s", "lower target"],
        id="tier-target-above-maximum",
    ),
    pytest.param(
        _edit("target: 5_minutes", "target: 1_hour"),
        "data_categories.critical_user_data.target",
        ["target 1h00m00s is above maximum_acceptable 15m00s"],
        id="data-target-above-maximum",
    ),
    pytest.param(
        _edit("services: [authentication]", "services: authentication"),
        "tiers.tier_1_critical.services",
        ["expected a list of names", "the text 'authentication'"],
        id="services-not-a-list",
    ),
    pytest.param(
        _edit("criticality: critical", "criticality: urgent"),
        "business_functions.user_authentication.criticality",
        ["unknown criticality 'urgent'", "critical, high, medium, low"],
        id="unknown-criticality",
    ),
    pytest.param(
        _edit("tier: tier_1_critical", "tier: tier_9"),
        "business_functions.user_authentication.tier",
        ["'tier_9' is not defined under tiers", "tier_1_critical, tier_3_medium"],
        id="function-names-missing-tier",
    ),
    pytest.param(
        _edit("data_category: critical_user_data", "data_category: critical_user_dat"),
        "business_functions.user_authentication.data_category",
        ["not defined under data_categories", "did you mean 'critical_user_data'?"],
        id="function-names-missing-data-category",
    ),
    pytest.param(
        _edit("rto: 15_minutes", "rto: 45_minutes"),
        "business_functions.user_authentication.rto",
        [
            "rto 45m00s exceeds maximum_acceptable 30m00s of its tier tier_1_critical",
            "raise tiers.tier_1_critical.maximum_acceptable",
        ],
        id="function-rto-over-tier-maximum",
    ),
    pytest.param(
        _edit("rpo: 5_minutes", "rpo: 20_minutes"),
        "business_functions.user_authentication.rpo",
        [
            "rpo 20m00s exceeds maximum_acceptable 15m00s of its data category critical_user_data",
            "raise data_categories.critical_user_data.maximum_acceptable",
        ],
        id="function-rpo-over-data-maximum",
    ),
    pytest.param(
        _edit("function: user_authentication", "function: video_upload"),
        "business_dependencies.login_workflow.function",
        ["'video_upload' is not defined under business_functions", "user_authentication"],
        id="dependency-names-missing-function",
    ),
    pytest.param(
        _edit("total: 31000", "total: 31001"),
        "downtime_costs.rows[1].total",
        ["total 31001 is not", "20000 + 8000 + 3000 = 31000", "correct the total"],
        id="cost-total-not-sum",
    ),
    pytest.param(
        _edit("duration: 4_hours", "duration: 30_minutes"),
        "downtime_costs.rows[1].duration",
        ["not longer than the previous row's 1h00m00s", "shortest downtime to the longest"],
        id="cost-rows-out-of-order",
    ),
    pytest.param(
        _edit("revenue_loss: 5000", "revenue_loss: '$5,000'"),
        "downtime_costs.rows[0].revenue_loss",
        ["expected an amount of money", "without currency sign"],
        id="cost-amount-text",
    ),
    pytest.param(
        _edit(" recovery_cost: 1000,", ""),
        "downtime_costs.rows[0].recovery_cost",
        ["required key 'recovery_cost' is missing from a downtime cost row"],
        id="cost-row-missing-part",
    ),
    pytest.param(
        _edit("within: 5_minutes", "within: soon"),
        "communication.internal.immediate_team.within",
        ["cannot read 'soon'"],
        id="communication-deadline-unparseable",
    ),
    pytest.param(
        _edit("  external:\n    public:", "  external:\n    immediate_team:"),
        "communication.external.immediate_team",
        ["also listed under communication.internal"],
        id="communication-audience-twice",
    ),
]


@pytest.mark.parametrize(("edit", "key", "fragments"), BAD_CASES)
def test_invalid_file_is_refused(
    tmp_path: Path, edit: Callable[[str], str], key: str, fragments: list[str]
) -> None:
    """Each mistake raises InvalidTargets naming the file, the key and a fix."""
    path = _write(tmp_path, edit(VALID))
    with pytest.raises(InvalidTargets) as excinfo:
        load_targets(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert f"{key}:" in message or f"{key}," in message
    assert "\nHint: " in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file_names_the_option(tmp_path: Path) -> None:
    """A targets file that does not exist is reported with the option that chose it."""
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(InvalidTargets, match="--drill-targets") as excinfo:
        load_targets(path)
    assert str(path) in str(excinfo.value)


def test_invalid_targets_is_a_value_error() -> None:
    """InvalidTargets can be caught as ValueError or DrillError."""
    assert issubclass(InvalidTargets, ValueError)
    assert issubclass(InvalidTargets, DrillError)


def test_python_tags_are_refused(tmp_path: Path) -> None:
    """The loader is a safe one: a python object tag is a YAML error, not code to run."""
    line = VALID.count("\n") + 1
    path = _write(tmp_path, VALID + "evil: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(InvalidTargets, match=f"YAML error at line {line}, column 7"):
        load_targets(path)


def test_resolve_function(targets: Targets) -> None:
    """A function's RTO/RPO targets are its own; the maxima come from its tier and category."""
    assert targets.resolve(function="user_authentication", max_lost_writes=0) == Target(
        kind="function",
        name="user_authentication",
        rto_target=900.0,
        rto_max=1_800.0,
        rpo_target=300.0,
        rpo_max=900.0,
        max_lost_writes=0,
    )


def test_resolve_tier_with_data(targets: Targets) -> None:
    """A tier gives the RTO; a data category named with it gives the RPO."""
    assert targets.resolve(tier="tier_3_medium", data="critical_user_data") == Target(
        kind="tier",
        name="tier_3_medium",
        rto_target=7_200.0,
        rto_max=14_400.0,
        rpo_target=300.0,
        rpo_max=900.0,
    )


def test_resolve_tier_without_data_does_not_judge_rpo(targets: Targets) -> None:
    """Without a data category a tier target has no RPO limits."""
    target = targets.resolve(tier="tier_1_critical")
    assert (target.rpo_target, target.rpo_max, target.max_lost_writes) == (None, None, None)


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        (
            {"tier": "tier_2_high"},
            ["unknown tier 'tier_2_high'", "tier_1_critical, tier_3_medium", "under tiers"],
        ),
        (
            {"function": "user_auth"},
            [
                "unknown business function 'user_auth'",
                "(did you mean 'user_authentication'?)",
                "under business_functions",
            ],
        ),
        (
            {"tier": "tier_1_critical", "data": "video_content"},
            ["unknown data category 'video_content'", "critical_user_data"],
        ),
    ],
)
def test_resolve_unknown_name(
    targets: Targets, kwargs: dict[str, Any], fragments: list[str]
) -> None:
    """An unknown name raises UnknownTarget listing the valid names and the file to edit."""
    with pytest.raises(UnknownTarget) as excinfo:
        targets.resolve(**kwargs)
    message = str(excinfo.value)
    assert str(targets.source) in message
    for fragment in fragments:
        assert fragment in message
    assert isinstance(excinfo.value, LookupError)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({}, "neither tier= nor function="),
        ({"tier": "tier_1_critical", "function": "user_authentication"}, "pass only function="),
        ({"function": "user_authentication", "data": "critical_user_data"}, "drop data="),
        ({"tier": "tier_1_critical", "max_lost_writes": -1}, "max_lost_writes=-1"),
        ({"tier": "tier_1_critical", "max_lost_writes": True}, "max_lost_writes=True"),
    ],
)
def test_resolve_bad_selection(targets: Targets, kwargs: dict[str, Any], fragment: str) -> None:
    """Impossible argument combinations raise TargetSelectionError saying what to pass."""
    with pytest.raises(TargetSelectionError, match=re.escape(fragment)):
        targets.resolve(**kwargs)


@pytest.mark.parametrize(
    ("seconds", "cost"),
    [
        (0.0, 0.0),
        (1_800.0, 4_000.0),
        (3_600.0, 8_000.0),
        (7_200.0, 8_000.0 + 23_000.0 / 3),
        (14_400.0, 31_000.0),
        (28_800.0, 62_000.0),
    ],
)
def test_downtime_cost_interpolates(targets: Targets, seconds: float, cost: float) -> None:
    """Costs are linear between rows from 0 at 0 s and follow the last row's rate beyond it."""
    assert targets.downtime_cost(seconds) == pytest.approx(cost)


def test_downtime_cost_rejects_negative(targets: Targets) -> None:
    """A negative downtime has no cost to estimate."""
    with pytest.raises(ValueError, match="-1"):
        targets.downtime_cost(-1.0)


def test_downtime_cost_without_rows(tmp_path: Path) -> None:
    """Without a cost table the estimate refuses and says which section to add."""
    loaded = load_targets(
        _write(
            tmp_path,
            "schema_version: 1\nmtd: 20m\ntiers:\n  t: {target: 1m, maximum_acceptable: 1m}\n",
        )
    )
    with pytest.raises(UnknownTarget, match="downtime_costs"):
        loaded.downtime_cost(60.0)


@pytest.fixture(scope="module")
def shipped() -> Targets:
    return load_targets(SHIPPED)


def test_shipped_tiers_match_the_requirements(shipped: Targets) -> None:
    """The shipped tiers are section 2.1's RTO table."""
    assert {
        name: (tier.target, tier.maximum_acceptable) for name, tier in shipped.tiers.items()
    } == {
        "tier_1_critical": (900.0, 1_800.0),
        "tier_2_high": (1_800.0, 3_600.0),
        "tier_3_medium": (7_200.0, 14_400.0),
        "tier_4_low": (28_800.0, 86_400.0),
    }
    assert shipped.tiers["tier_1_critical"].services == (
        "authentication",
        "core_api",
        "database_primary",
    )
    assert shipped.tiers["tier_4_low"].recovery_strategy == "tape_backup_restoration"


def test_shipped_data_categories_match_the_requirements(shipped: Targets) -> None:
    """The shipped data categories are section 2.2's RPO table."""
    assert {
        name: (data.target, data.maximum_acceptable, data.backup_method)
        for name, data in shipped.data_categories.items()
    } == {
        "critical_user_data": (300.0, 900.0, "synchronous_replication"),
        "video_content": (900.0, 3_600.0, "incremental_backup"),
        "annotation_data": (1_800.0, 7_200.0, "transaction_log_shipping"),
        "configuration_data": (14_400.0, 86_400.0, "full_backup"),
    }


def test_shipped_functions_match_the_requirements(shipped: Targets) -> None:
    """The shipped functions are section 1.1's table, placed in tiers by criticality."""
    tier_of = {
        "critical": "tier_1_critical",
        "high": "tier_2_high",
        "medium": "tier_3_medium",
        "low": "tier_4_low",
    }
    rows = {name: (f.criticality, f.rto, f.rpo) for name, f in shipped.business_functions.items()}
    assert rows == {
        "user_authentication": ("critical", 900.0, 300.0),
        "video_upload": ("high", 1_800.0, 900.0),
        "video_processing": ("high", 3_600.0, 1_800.0),
        "annotation_system": ("medium", 7_200.0, 3_600.0),
        "project_management": ("medium", 14_400.0, 7_200.0),
        "reporting_and_analytics": ("low", 28_800.0, 14_400.0),
    }
    for function in shipped.business_functions.values():
        assert function.tier == tier_of[function.criticality]
    assert shipped.business_functions["user_authentication"].data_category == ("critical_user_data")
    assert shipped.business_functions["user_authentication"].impact == (
        "Complete service unavailable"
    )


def test_shipped_dependencies_costs_and_communication(shipped: Targets) -> None:
    """The shipped dependencies, cost table, communication matrix and MTD match the requirements."""
    assert shipped.mtd == 1_200.0
    assert {d.name: d.function for d in shipped.business_dependencies.values()} == {
        "video_upload_workflow": "video_upload",
        "video_processing_pipeline": "video_processing",
        "annotation_workflow": "annotation_system",
        "authentication_workflow": "user_authentication",
    }
    assert shipped.business_dependencies["video_upload_workflow"].depends_on[0] == (
        "authentication_service"
    )
    assert shipped.cost_currency == "USD"
    assert [(row.duration, row.total) for row in shipped.downtime_costs] == [
        (3_600.0, 8_000.0),
        (14_400.0, 31_000.0),
        (86_400.0, 183_000.0),
        (604_800.0, 1_251_000.0),
    ]
    assert shipped.downtime_cost(86_400.0) == 183_000.0
    assert {a: s.within for a, s in shipped.communication.items()} == {
        "immediate_team": 300.0,
        "extended_team": 900.0,
        "management": 1_800.0,
        "customers": 3_600.0,
        "partners": 7_200.0,
        "public": None,
    }
    assert shipped.communication["public"].approval_required == "ceo_level"
    assert shipped.communication["customers"].approval_required is True
    assert shipped.communication["management"].recipients == ("director_engineering", "cto", "ceo")


def test_shipped_file_resolves_every_function(shipped: Targets) -> None:
    """Every shipped function resolves, with its RTO within its tier's maximum."""
    for name in shipped.business_functions:
        target = shipped.resolve(function=name)
        assert target.rto_target <= target.rto_max
        assert target.rpo_max is not None and target.rpo_target is not None
        assert target.rpo_target <= target.rpo_max


def test_function_services_follow_the_dependency_graph(shipped: Targets) -> None:
    """Functions map to drill services through depends_on and service_map; the rest is named."""
    assert shipped.function_services("video_upload") == (
        ("postgres", "s3"),
        ("file_validation_service",),
    )
    assert shipped.function_services("user_authentication") == (("postgres", "redis"), ())
    assert shipped.function_services("reporting_and_analytics") == ((), ())


def test_service_map_must_name_known_services(tmp_path: Path) -> None:
    """A service_map entry naming no drill service is refused with the valid choices."""
    text = (Path(__file__).parents[2] / "fixtures" / "targets.yaml").read_text()
    bad = tmp_path / "targets.yaml"
    bad.write_text(text.replace("database: [postgres]", "database: [mysql]"))
    with pytest.raises(
        InvalidTargets, match=r"(?s)service_map.database.*mysql.*postgres, redis, s3"
    ):
        load_targets(bad)
