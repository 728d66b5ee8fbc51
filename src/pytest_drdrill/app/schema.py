"""The sample application's tables and settings, shared by the service and whoever starts it.

The tables are created once, before any replica starts: several replicas racing on
``CREATE TABLE IF NOT EXISTS`` can fail on PostgreSQL's catalog constraints.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

TABLES = """
CREATE TABLE IF NOT EXISTS app_users (
    name text PRIMARY KEY, salt bytea NOT NULL, digest bytea NOT NULL);
CREATE TABLE IF NOT EXISTS app_videos (
    id bigint PRIMARY KEY, owner text NOT NULL, object_key text NOT NULL,
    size integer NOT NULL, uploaded_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS app_annotations (
    id bigint PRIMARY KEY, video_id bigint NOT NULL, author text NOT NULL,
    body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
"""

#: Environment variables a replica reads its settings from (gunicorn passes no arguments).
ENV = {
    "database": "DRDRILL_APP_DATABASE",
    "reporting": "DRDRILL_APP_REPORTING",
    "redis": "DRDRILL_APP_REDIS",
    "s3": "DRDRILL_APP_S3",
    "bucket": "DRDRILL_APP_BUCKET",
    "region": "DRDRILL_APP_REGION",
}


@dataclasses.dataclass(frozen=True)
class AppSettings:
    """Where one replica finds its stores.

    :param database: libpq DSN of the PostgreSQL service endpoint (writes).
    :param reporting: DSN reporting reads go to (a read-only replica, or ``database``).
    :param redis: ``redis://`` URL of the Redis service endpoint.
    :param s3: ``http://host:port`` of the object-store service endpoint.
    :param bucket: the bucket videos go into.
    :param region: the region the replica runs in, reported by ``/health``.
    """

    database: str
    reporting: str
    redis: str
    s3: str
    bucket: str
    region: str = "primary"

    def environment(self) -> dict[str, str]:
        """These settings as the environment variables :meth:`from_environment` reads."""
        return {ENV[f.name]: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> AppSettings:
        """Read the settings from the environment.

        :raises KeyError: naming the missing variable.
        """
        env = os.environ if env is None else env
        values = {}
        for field, variable in ENV.items():
            if variable not in env:
                raise KeyError(
                    f"{variable} is not set: the sample application needs its {field} "
                    "setting (pytest_drdrill.topology.app_tier sets it)"
                )
            values[field] = env[variable]
        return cls(**values)


def create_tables(dsn: str) -> None:
    """Create the application's tables on the PostgreSQL primary behind ``dsn``."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(TABLES)
