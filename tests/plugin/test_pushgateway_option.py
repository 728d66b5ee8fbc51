"""``--drill-pushgateway`` / ini ``drill_pushgateway``: parsed, defaulted, refused when bad."""

from __future__ import annotations

import pytest

PRINTER = """
def test_print(drdrill_config):
    print()
    print(f"PUSHGATEWAY={drdrill_config.pushgateway!r}")
"""


def _printed(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_print=PRINTER)
    result = pytester.runpytest("-s", *args)
    result.assert_outcomes(passed=1)
    return result


def test_no_pushgateway_by_default(pytester: pytest.Pytester) -> None:
    """Without the option nothing is pushed."""
    _printed(pytester).stdout.fnmatch_lines(["PUSHGATEWAY=None"])


def test_pushgateway_from_cli(pytester: pytest.Pytester) -> None:
    """The flag's URL is kept, without a trailing slash."""
    result = _printed(pytester, "--drill-pushgateway=http://127.0.0.1:9091/")
    result.stdout.fnmatch_lines(["PUSHGATEWAY='http://127.0.0.1:9091'"])


def test_pushgateway_from_ini_without_scheme(pytester: pytest.Pytester) -> None:
    """The ini key takes host:port as http://host:port, as prometheus_client does."""
    pytester.makeini("[pytest]\ndrill_pushgateway = pgw.example:9091\n")
    _printed(pytester).stdout.fnmatch_lines(["PUSHGATEWAY='http://pgw.example:9091'"])


@pytest.mark.parametrize(
    ("value", "source"),
    [
        ("ftp://127.0.0.1:9091", "--drill-pushgateway"),
        ("http://", "--drill-pushgateway"),
        ("http://127.0.0.1:99999", "--drill-pushgateway"),
        ("pushgateway host:9091", "--drill-pushgateway"),
    ],
)
def test_bad_cli_value_is_usage_error(pytester: pytest.Pytester, value: str, source: str) -> None:
    """A value that is no http(s) URL with a host stops the run before any drill."""
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest(f"--drill-pushgateway={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: {source}: '{value}' is not a Pushgateway address; give its URL, e.g. "
            "http://127.0.0.1:9091 (set with --drill-pushgateway / ini drill_pushgateway)"
        ]
    )


def test_bad_ini_value_is_usage_error(pytester: pytest.Pytester) -> None:
    """A bad ini value names the ini key."""
    pytester.makeini("[pytest]\ndrill_pushgateway = mailto:ops@example.com\n")
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: ini key drill_pushgateway: 'mailto:ops@example.com' is not a Pushgateway*"]
    )
