"""A team's Patroni settings file, checked and merged over the drill's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_drdrill.errors import PatroniSettingsError, TopologyError
from pytest_drdrill.topology.patroni import BOOTSTRAP_DCS
from pytest_drdrill.topology.patroni_settings import check_settings, load_settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "patroni.yml"
    path.write_text(text)
    return path


def test_settings_merge_over_the_defaults(tmp_path: Path) -> None:
    """Given keys win; postgresql.parameters merge key by key."""
    path = _write(
        tmp_path,
        "ttl: 30\nloop_wait: 5\nretry_timeout: 10\nfailsafe_mode: true\n"
        "postgresql:\n  parameters:\n    max_connections: 100\n"
        "tags:\n  pg-dr:\n    nofailover: true\n",
    )
    settings = load_settings(path)
    assert (settings.dcs["ttl"], settings.dcs["loop_wait"], settings.dcs["retry_timeout"]) == (
        30,
        5,
        10,
    )
    assert settings.dcs["failsafe_mode"] is True
    parameters = settings.dcs["postgresql"]["parameters"]
    assert parameters["max_connections"] == 100 and parameters["wal_log_hints"] == "on"
    assert settings.dcs["postgresql"]["use_pg_rewind"] is True
    assert settings.tags == {"pg-dr": {"nofailover": True}}
    assert settings.source == str(path)
    assert BOOTSTRAP_DCS["postgresql"]["parameters"]["max_connections"] == 40


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    """An empty file drills the defaults unchanged."""
    assert load_settings(_write(tmp_path, "")).dcs == BOOTSTRAP_DCS


def test_unknown_key_names_file_key_and_choices(tmp_path: Path) -> None:
    """A typo is refused with the file, the key and the allowed keys."""
    path = _write(tmp_path, "loop_weight: 5\n")
    with pytest.raises(
        PatroniSettingsError, match=rf"{path}: loop_weight: unknown setting; allowed: .*loop_wait"
    ):
        load_settings(path)


def test_unknown_nested_key_names_its_path(tmp_path: Path) -> None:
    """A nested unknown key is named by its dotted path."""
    with pytest.raises(PatroniSettingsError, match=r"postgresql\.use_rewind: unknown setting"):
        load_settings(_write(tmp_path, "postgresql:\n  use_rewind: true\n"))


def test_wrong_type_names_the_valid_values(tmp_path: Path) -> None:
    """A boolean where seconds belong is refused with what to use."""
    with pytest.raises(
        PatroniSettingsError, match=r"ttl: bool True is not allowed: use a whole number >= 1"
    ):
        load_settings(_write(tmp_path, "ttl: true\n"))
    with pytest.raises(
        PatroniSettingsError, match=r"failsafe_mode: str 'yes please' .*true or false"
    ):
        load_settings(_write(tmp_path, "failsafe_mode: yes please\n"))


def test_synchronous_mode_accepts_patronis_values_only(tmp_path: Path) -> None:
    """The word quorum is accepted, another word is refused with the choices."""
    assert (
        load_settings(_write(tmp_path, "synchronous_mode: quorum\n")).dcs["synchronous_mode"]
        == "quorum"
    )
    with pytest.raises(
        PatroniSettingsError, match=r"synchronous_mode: .*use true, false, on, off or quorum"
    ):
        load_settings(_write(tmp_path, "synchronous_mode: strict\n"))


def test_rewind_without_wal_log_hints_is_refused(tmp_path: Path) -> None:
    """pg_rewind needs wal_log_hints: the error names the parameter's path and the fix."""
    path = _write(tmp_path, "postgresql:\n  parameters:\n    wal_log_hints: 'off'\n")
    with pytest.raises(
        PatroniSettingsError, match=r"postgresql\.parameters\.wal_log_hints: .*set it to 'on'"
    ):
        load_settings(path)


def test_the_timing_rule_is_enforced_with_numbers(tmp_path: Path) -> None:
    """Breaking loop_wait + 2 * retry_timeout <= ttl names the file and the figures."""
    path = _write(tmp_path, "ttl: 20\nloop_wait: 5\nretry_timeout: 10\n")
    with pytest.raises(PatroniSettingsError, match=rf"{path}: .*5 \+ 2 \* 10 > 20.*at least 25"):
        load_settings(path)


def test_newer_patroni_minimums_apply_by_version() -> None:
    """A ttl of 10 runs on 3.0.2 but is below the minimum of 20 from Patroni 3.2."""
    check_settings({"ttl": 10}, source="f.yml", patroni_version=(3, 0, 2))
    with pytest.raises(
        PatroniSettingsError, match=r"f\.yml: ttl: 10 is below Patroni 3\.2\.0\+'s minimum of 20"
    ):
        check_settings({"ttl": 10}, source="f.yml", patroni_version=(4, 0, 4))


def test_both_names_of_the_start_timeout_are_refused() -> None:
    """master_start_timeout beside primary_start_timeout asks to keep one."""
    with pytest.raises(PatroniSettingsError, match="keep only primary_start_timeout"):
        check_settings({"primary_start_timeout": 5, "master_start_timeout": 5}, source="f.yml")


def test_tags_of_unknown_members_are_refused() -> None:
    """Only the cluster's members (pg-primary, pg-sync, pg-sync2, pg-dr) may carry tags."""
    allowed = "allowed: pg-dr, pg-primary, pg-sync, pg-sync2$"
    with pytest.raises(PatroniSettingsError, match=rf"tags\.pg-3: unknown setting; {allowed}"):
        check_settings({"tags": {"pg-3": {"nosync": True}}}, source="f.yml")


def test_contradictory_tags_are_refused() -> None:
    """A nofailover tag with a positive failover_priority is a contradiction."""
    with pytest.raises(
        PatroniSettingsError, match=r"tags\.pg-sync\.failover_priority: contradicts nofailover"
    ):
        check_settings(
            {"tags": {"pg-sync": {"nofailover": True, "failover_priority": 3}}}, source="f.yml"
        )


def test_unreadable_and_malformed_files_name_the_file(tmp_path: Path) -> None:
    """A missing file or bad YAML is an error that names the file."""
    with pytest.raises(PatroniSettingsError, match=r"missing\.yml: cannot read"):
        load_settings(tmp_path / "missing.yml")
    with pytest.raises(PatroniSettingsError, match="not valid YAML"):
        load_settings(_write(tmp_path, "ttl: [1\n"))
    with pytest.raises(PatroniSettingsError, match="must be a mapping"):
        load_settings(_write(tmp_path, "- ttl\n"))


def test_the_error_is_a_topology_and_value_error() -> None:
    """Callers catching TopologyError or ValueError both see it."""
    assert issubclass(PatroniSettingsError, TopologyError)
    assert issubclass(PatroniSettingsError, ValueError)


_timings = st.tuples(st.integers(1, 120), st.integers(1, 60), st.integers(1, 60))


@given(_timings.filter(lambda t: t[1] + 2 * t[2] <= t[0]))
def test_every_timing_triple_meeting_the_rule_is_accepted(timings: tuple[int, int, int]) -> None:
    """Any ttl, loop_wait, retry_timeout with loop_wait + 2 * retry_timeout <= ttl passes."""
    ttl, loop, retry = timings
    dcs = check_settings(
        {"ttl": ttl, "loop_wait": loop, "retry_timeout": retry}, source="f.yml"
    ).dcs
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == timings


@given(_timings.filter(lambda t: t[1] + 2 * t[2] > t[0]))
def test_every_timing_triple_breaking_the_rule_is_refused(timings: tuple[int, int, int]) -> None:
    """Any triple with loop_wait + 2 * retry_timeout > ttl is refused with the sum."""
    ttl, loop, retry = timings
    with pytest.raises(PatroniSettingsError, match=rf"{loop} \+ 2 \* {retry} > {ttl}"):
        check_settings({"ttl": ttl, "loop_wait": loop, "retry_timeout": retry}, source="f.yml")
