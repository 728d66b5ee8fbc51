"""The sample application: the requirements' business functions as HTTP routes.

Each replica is this WSGI application under gunicorn. Every request opens its own
PostgreSQL connection through the service endpoint, so a replica follows a repointed
endpoint at its next request, as an application behind a DNS name or virtual IP does;
Redis and S3 clients reconnect on their own. A store that does not answer makes the
request fail with 503, which the load balancer's health check and the function clients
both see.

Routes: ``GET /health`` (every store answers), ``POST /users``, ``POST /login``
(user in PostgreSQL, session in Redis), ``POST /videos`` (object in S3, then its row in
PostgreSQL), ``POST /annotations`` (row in PostgreSQL, cached in Redis),
``GET /annotations/<id>``, ``GET /report`` (reads from the reporting DSN) and
``POST /inventory`` (which acknowledged ids are still there, for data-loss counts).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any

from flask import Flask, abort, jsonify, request

from pytest_drdrill.app.schema import AppSettings

if TYPE_CHECKING:
    import psycopg
    import redis
    from flask.typing import ResponseReturnValue
    from mypy_boto3_s3 import S3Client

#: Seconds a store may take to answer one call; the load balancer checks every 500 ms.
STORE_TIMEOUT = 2.0
#: Seconds a session lives in Redis.
SESSION_TTL = 3600
_ITERATIONS = 1000


def password_digest(password: str, salt: bytes) -> bytes:
    """PBKDF2 digest of ``password``: only a salted, slow hash is stored, never the password."""
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _ITERATIONS)


class Stores:
    """One replica's clients of PostgreSQL, Redis and S3."""

    def __init__(self, settings: AppSettings) -> None:
        from pytest_drdrill.clients.redis import sync_client
        from pytest_drdrill.clients.s3 import s3_client

        self.settings = settings
        self.redis: redis.Redis = sync_client(settings.redis, timeout=STORE_TIMEOUT)
        self.s3: S3Client = s3_client(settings.s3, timeout=STORE_TIMEOUT)

    def sql(self, *, reporting: bool = False) -> psycopg.Connection[Any]:
        """A new autocommit connection (through the endpoint, so it follows a repoint)."""
        import psycopg

        dsn = self.settings.reporting if reporting else self.settings.database
        return psycopg.connect(dsn, autocommit=True, connect_timeout=2)


def create_app(settings: AppSettings | None = None) -> Flask:
    """The WSGI application; settings from the environment when none are given."""
    stores = Stores(settings or AppSettings.from_environment())
    app = Flask("pytest_drdrill.app")

    @app.errorhandler(Exception)
    def store_failed(exc: Exception) -> ResponseReturnValue:
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return exc
        return jsonify(error=f"{type(exc).__name__}: {exc}"), 503

    def user_of_session() -> str:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        user = stores.redis.get(f"session:{token}") if token else None
        if user is None:
            abort(401)
        return str(user.decode() if isinstance(user, bytes) else user)

    @app.get("/health")
    def health() -> ResponseReturnValue:
        with stores.sql() as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        if row is None or row[0]:
            return jsonify(error="the database endpoint leads to a read-only server"), 503
        stores.redis.ping()
        stores.s3.head_bucket(Bucket=stores.settings.bucket)
        return jsonify(region=stores.settings.region)

    @app.post("/users")
    def add_user() -> ResponseReturnValue:
        body = request.get_json(force=True)
        salt = secrets.token_bytes(16)
        with stores.sql() as conn:
            conn.execute(
                "INSERT INTO app_users VALUES (%s, %s, %s) ON CONFLICT (name) DO NOTHING",
                (body["name"], salt, password_digest(body["password"], salt)),
            )
        return jsonify(name=body["name"]), 201

    @app.post("/login")
    def login() -> ResponseReturnValue:
        body = request.get_json(force=True)
        with stores.sql() as conn:
            row = conn.execute(
                "SELECT salt, digest FROM app_users WHERE name = %s", (body["name"],)
            ).fetchone()
        if row is None or not hmac.compare_digest(
            password_digest(body["password"], bytes(row[0])), bytes(row[1])
        ):
            abort(401)
        token = secrets.token_hex(16)
        stores.redis.set(f"session:{token}", body["name"], ex=SESSION_TTL)
        return jsonify(token=token)

    @app.post("/videos")
    def upload() -> ResponseReturnValue:
        user = user_of_session()
        body = request.get_json(force=True)
        video, content = int(body["id"]), str(body["content"]).encode()
        key = f"videos/{video}"
        # The object first: a row never names an object that was not stored.
        stores.s3.put_object(Bucket=stores.settings.bucket, Key=key, Body=content)
        with stores.sql() as conn:
            conn.execute(
                "INSERT INTO app_videos (id, owner, object_key, size) VALUES (%s, %s, %s, %s)",
                (video, user, key, len(content)),
            )
        return jsonify(id=video), 201

    @app.post("/annotations")
    def annotate() -> ResponseReturnValue:
        user = user_of_session()
        body = request.get_json(force=True)
        note = int(body["id"])
        with stores.sql() as conn:
            conn.execute(
                "INSERT INTO app_annotations (id, video_id, author, body) VALUES (%s, %s, %s, %s)",
                (note, int(body["video_id"]), user, str(body["body"])),
            )
        stores.redis.set(f"annotation:{note}", str(body["body"]), ex=SESSION_TTL)
        return jsonify(id=note), 201

    @app.get("/annotations/<int:note>")
    def annotation(note: int) -> ResponseReturnValue:
        cached = stores.redis.get(f"annotation:{note}")
        if cached is not None:
            return jsonify(id=note, body=cached.decode() if isinstance(cached, bytes) else cached)
        with stores.sql() as conn:
            row = conn.execute("SELECT body FROM app_annotations WHERE id = %s", (note,)).fetchone()
        if row is None:
            abort(404)
        return jsonify(id=note, body=row[0])

    @app.get("/report")
    def report() -> ResponseReturnValue:
        with stores.sql(reporting=True) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM app_videos), (SELECT count(*) FROM app_annotations)"
            ).fetchone()
        assert row is not None
        return jsonify(videos=row[0], annotations=row[1])

    @app.post("/inventory")
    def inventory() -> ResponseReturnValue:
        body = request.get_json(force=True)
        videos = [int(i) for i in body.get("videos", [])]
        notes = [int(i) for i in body.get("annotations", [])]
        with stores.sql() as conn:
            rows = conn.execute(
                "SELECT id, object_key FROM app_videos WHERE id = ANY(%s)", (videos,)
            ).fetchall()
            present_notes = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM app_annotations WHERE id = ANY(%s)", (notes,)
                ).fetchall()
            ]
        present_videos = [vid for vid, key in rows if _object_exists(stores, key)]
        return jsonify(videos=present_videos, annotations=present_notes)

    return app


def _object_exists(stores: Stores, key: str) -> bool:
    import botocore.exceptions

    try:
        stores.s3.head_object(Bucket=stores.settings.bucket, Key=key)
    except botocore.exceptions.ClientError:
        return False
    return True
