from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_drdrill.durations import InvalidDuration, format_duration, parse_duration
from pytest_drdrill.errors import DrillError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("15_minutes", 900.0),
        ("1_minute", 60.0),
        ("1_hour", 3_600.0),
        ("2_hours", 7_200.0),
        ("24_hours", 86_400.0),
        ("30_days", 2_592_000.0),
        ("1_week", 604_800.0),
        ("2_weeks", 1_209_600.0),
        ("15m", 900.0),
        ("900s", 900.0),
        ("1h30m", 5_400.0),
        ("1h 30m", 5_400.0),
        ("1_hour_30_minutes", 5_400.0),
        ("1.5h", 5_400.0),
        ("250ms", 0.25),
        ("2d12h", 216_000.0),
        ("16m02s", 962.0),
        ("15 Minutes", 900.0),
        ("  10s  ", 10.0),
        ("900", 900.0),
        ("12.5", 12.5),
        (".5", 0.5),
        ("0", 0.0),
        ("0_minutes", 0.0),
        (900, 900.0),
        (0.31, 0.31),
        (0, 0.0),
    ],
)
def test_parse_accepted_forms(value: str | int | float, seconds: float) -> None:
    """Each documented form reads as the expected number of seconds."""
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-5m", "negative"),
        ("-15_minutes", "negative"),
        (-1, "negative"),
        (-0.5, "negative"),
        (math.nan, "not a finite number"),
        (math.inf, "not a finite number"),
        (True, "boolean"),
        ("15 minuts", "cannot read '15 minuts'"),
        ("fifteen minutes", "cannot read 'fifteen minutes'"),
        ("m", "cannot read 'm'"),
        ("1h30", "cannot read '1h30'"),
        ("5m5m", "cannot read '5m5m'"),
        ("30s1h", "cannot read '30s1h'"),
        ("1e3", "cannot read '1e3'"),
        ("--5m", "cannot read '--5m'"),
        ("nan", "cannot read 'nan'"),
    ],
)
def test_parse_rejects(value: str | int | float, problem: str) -> None:
    """Bad durations raise a ValueError that quotes the problem and lists the accepted forms."""
    with pytest.raises(InvalidDuration) as excinfo:
        parse_duration(value, where="tiers.tier_1_critical.target")
    message = str(excinfo.value)
    assert problem in message
    assert message.startswith("tiers.tier_1_critical.target: ")
    assert "15_minutes" in message and "1h30m" in message and "250ms" in message


def test_invalid_duration_is_a_value_error_and_a_drill_error() -> None:
    """Callers can catch InvalidDuration as ValueError or as DrillError."""
    assert issubclass(InvalidDuration, ValueError)
    assert issubclass(InvalidDuration, DrillError)


def test_parse_without_where_has_no_prefix() -> None:
    """Without ``where`` the message starts with the problem itself."""
    with pytest.raises(ValueError, match=r"^cannot read 'soon' as a duration"):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0.00s"),
        (0.31, "0.31s"),
        (12.5, "12.50s"),
        (59.99, "59.99s"),
        (59.999, "1m00s"),
        (60.0, "1m00s"),
        (962.0, "16m02s"),
        (900.0, "15m00s"),
        (3_599.4, "59m59s"),
        (3_599.6, "1h00m00s"),
        (3_900.0, "1h05m00s"),
        (86_399.0, "23h59m59s"),
        (86_400.0, "1d00h00m"),
        (183_600.0, "2d03h00m"),
        (604_800.0, "7d00h00m"),
        (-12.5, "-12.50s"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    """Durations are written in the compact form the reports use."""
    assert format_duration(seconds) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_format_rejects_non_finite(value: float) -> None:
    """NaN and infinities are refused rather than written as nonsense."""
    with pytest.raises(ValueError, match="not a finite number"):
        format_duration(value)


def _rounding(seconds: float) -> float:
    if seconds < 60:
        return 0.005
    if seconds < 86_400:
        return 0.5
    return 30.0


@given(st.floats(min_value=0, max_value=10**8, allow_nan=False, allow_infinity=False))
def test_format_then_parse_round_trips(seconds: float) -> None:
    """Reading back a formatted duration gives the original within the format's rounding."""
    assert parse_duration(format_duration(seconds)) == pytest.approx(
        seconds, abs=_rounding(seconds) + 1e-6
    )


@given(
    st.integers(min_value=0, max_value=500),
    st.integers(min_value=0, max_value=59),
    st.integers(min_value=0, max_value=59),
)
def test_parse_combined_short_forms(hours: int, minutes: int, seconds: int) -> None:
    """``<h>h<m>m<s>s`` reads as the sum of its parts."""
    text = f"{hours}h{minutes}m{seconds}s"
    assert parse_duration(text) == hours * 3_600 + minutes * 60 + seconds
