"""The local topology's server counts (``--drill-sizes``)."""

from __future__ import annotations

import pytest

from pytest_drdrill.topology.sizes import Sizes


def test_defaults_are_the_requirements_architecture_at_its_smallest() -> None:
    sizes = Sizes.parse(None, where="x")
    assert sizes.sync_names() == ("pg-sync", "pg-sync2")
    assert sizes.read_names() == ("pg-read",)
    assert sizes.app_replicas() == {"primary": 2, "dr": 1}
    assert sizes.explicit() == {}


def test_keys_left_out_keep_their_defaults_and_names_follow_the_counts() -> None:
    sizes = Sizes.parse("pg_sync=3,\n pg_read = 0", where="x")
    assert sizes.sync_names() == ("pg-sync", "pg-sync2", "pg-sync3")
    assert sizes.read_names() == ()
    assert sizes.explicit() == {"pg_sync": 3, "pg_read": 0}


@pytest.mark.parametrize("text", ["pg_sync", "pg_sync=", "pg_sync=-1", "pg_sync=5", "pg_sync=1.5"])
def test_a_count_outside_its_range_names_the_range(text: str) -> None:
    with pytest.raises(
        ValueError, match=r"^ini drill_sizes: pg_sync must be a whole number from 1 to 4"
    ):
        Sizes.parse(text, where="ini drill_sizes")
