"""Every client pytest-drdrill makes of PostgreSQL, Redis and S3, made in one place.

Each is bounded and hermetic in its own way (see the modules); recovery/, measure/,
backup/ and topology/ import their clients from here rather than from each other. The
submodules import their driver (psycopg, redis-py, boto3) when imported, so this package
itself imports none of them.
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type when it has none."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]
