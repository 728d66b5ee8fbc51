"""``--drill-sizes``: server counts of the local topology, checked at configuration time."""

from __future__ import annotations

import pytest

PRINT = """
def test_print(drdrill_config, drdrill_backend):
    print("SIZES", drdrill_config.sizes.explicit(), drdrill_backend.sizes.explicit())
"""


def test_flag_overrides_the_ini_key_and_reaches_the_local_backend(
    pytester: pytest.Pytester,
) -> None:
    """Both forms are read; the flag wins; the backend that builds topologies gets them."""
    pytester.makepyfile(PRINT)
    pytester.makeini("[pytest]\ndrill_sizes = pg_sync=3, app_dr=2\n")
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*SIZES {'pg_sync': 3, 'app_dr': 2} {'pg_sync': 3, 'app_dr': 2}"])
    result = pytester.runpytest("-s", "--drill-sizes=pg_read=0", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*SIZES {'pg_read': 0} {'pg_read': 0}"])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            "pg_syncs=2",
            "--drill-sizes: unknown size 'pg_syncs' in 'pg_syncs=2'; the sizes are pg_sync, "
            "pg_read, redis_replicas, app_primary, app_dr, written key=N*",
            id="typo",
        ),
        pytest.param(
            "pg_sync=0",
            "--drill-sizes: pg_sync must be a whole number from 1 to 4 (synchronous PostgreSQL "
            "standbys in the primary region), not '0'*",
            id="below",
        ),
        pytest.param(
            "app_dr=two", "--drill-sizes: app_dr must be a whole number from 1*", id="word"
        ),
        pytest.param("pg_read=1,pg_read=2", "*pg_read is given twice; keep one*", id="twice"),
    ],
)
def test_a_bad_size_is_a_usage_error_naming_key_range_and_option(
    pytester: pytest.Pytester, value: str, message: str
) -> None:
    pytester.makepyfile(PRINT)
    result = pytester.runpytest(f"--drill-sizes={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}(set with --drill-sizes / ini drill_sizes)"])


def test_sizes_are_refused_on_a_backend_that_does_not_build_them(
    pytester: pytest.Pytester,
) -> None:
    """The Docker backend builds its fixed shape: silently ignoring the sizes would mislead."""
    pytester.makepyfile(PRINT)
    result = pytester.runpytest("--drill-backend=docker", "--drill-sizes=pg_sync=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --drill-sizes: sizes apply to the local backend only; the docker backend "
         "builds its fixed shape. Drop --drill-sizes / ini drill_sizes, or use "
         "--drill-backend=local"]
    )  # fmt: skip
