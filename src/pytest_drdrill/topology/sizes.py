"""How many of each server the local topology builds (``--drill-sizes``).

The defaults are the requirements' architecture at the smallest size two cores run
comfortably: two synchronous standbys and a read replica beside the PostgreSQL primary,
two Redis replicas beside the Redis primary, two application replicas in the primary
region and one in DR. A team sizes it nearer its own platform with, e.g.,
``--drill-sizes=pg_sync=3,app_primary=4``.
"""

from __future__ import annotations

import dataclasses

__all__ = ["LIMITS", "Sizes"]

#: Each size's key, its allowed range, and what it counts (for error messages and docs).
LIMITS: dict[str, tuple[int, int, str]] = {
    "pg_sync": (1, 4, "synchronous PostgreSQL standbys in the primary region"),
    "pg_read": (0, 3, "asynchronous read-only PostgreSQL replicas in the primary region"),
    "redis_replicas": (0, 4, "Redis replicas beside the Redis primary in the primary region"),
    "app_primary": (1, 8, "application replicas in the primary region"),
    "app_dr": (1, 8, "application replicas in the DR region"),
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Server counts of the local topology; see :data:`LIMITS` for the ranges.

    .. versionadded:: 0.9
    """

    pg_sync: int = 2
    pg_read: int = 1
    redis_replicas: int = 2
    app_primary: int = 2
    app_dr: int = 1

    @classmethod
    def parse(cls, text: str | None, *, where: str) -> Sizes:
        """Read ``key=N,key=N``; keys left out keep their defaults.

        :param where: where the text came from, for the error message.
        :raises ValueError: naming the key, the value and the allowed range.
        """
        given: dict[str, int] = {}
        for part in (text or "").replace("\n", ",").split(","):
            if not part.strip():
                continue
            key, sep, value = (s.strip() for s in part.partition("="))
            if key not in LIMITS:
                raise ValueError(
                    f"{where}: unknown size {key!r} in {part.strip()!r}; the sizes are "
                    f"{', '.join(LIMITS)}, written key=N"
                )
            low, high, what = LIMITS[key]
            if not sep or not value.isdigit() or not low <= int(value) <= high:
                raise ValueError(
                    f"{where}: {key} must be a whole number from {low} to {high} ({what}), "
                    f"not {value!r}"
                )
            if key in given:
                raise ValueError(f"{where}: {key} is given twice; keep one")
            given[key] = int(value)
        return cls(**given)

    def explicit(self) -> dict[str, int]:
        """The sizes that differ from the defaults."""
        default = Sizes()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    def sync_names(self) -> tuple[str, ...]:
        """``pg-sync``, ``pg-sync2``, …: the synchronous standbys' names."""
        return _numbered("pg-sync", self.pg_sync)

    def read_names(self) -> tuple[str, ...]:
        """``pg-read``, ``pg-read2``, …: the read replicas' names."""
        return _numbered("pg-read", self.pg_read)

    def redis_replica_names(self) -> tuple[str, ...]:
        """``redis-replica-1``, …: the Redis replicas beside the primary."""
        return tuple(f"redis-replica-{i}" for i in range(1, self.redis_replicas + 1))

    def app_replicas(self) -> dict[str, int]:
        """Application replicas per region, the serving region first."""
        return {"primary": self.app_primary, "dr": self.app_dr}


def _numbered(base: str, count: int) -> tuple[str, ...]:
    """``base``, ``base2``, … ``count`` names: the first keeps the two-region topology's name."""
    return tuple(base if i == 1 else f"{base}{i}" for i in range(1, count + 1))
