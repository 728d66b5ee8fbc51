"""S3 clients, hermetic and single-attempt.

Every S3 client pytest-drdrill makes comes from :func:`s3_client`. It is hermetic: it
never reads ``~/.aws`` (config, credentials, models), never asks the instance metadata
service, ignores ``AWS_PROFILE`` and never goes through an HTTP proxy to a loopback
endpoint. It makes exactly one attempt per call, so the caller alone decides what a
failure means (a retried PUT would hide an indeterminate write).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import urllib.parse
from typing import TYPE_CHECKING

import boto3
import botocore.exceptions
import botocore.handlers
import botocore.session
from botocore.config import Config
from botocore.configprovider import ConstantProvider
from botocore.loaders import Loader

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Access key and secret moto accepts; any value works, real AWS rejects them.
DUMMY_KEY = "drdrill"


@dataclasses.dataclass(frozen=True)
class S3Credentials:
    """Credentials for a real S3-compatible store (MinIO, AWS); moto accepts anything.

    :param access_key: the access key id.
    :param secret_key: the secret access key.
    :param session_token: a session token for temporary credentials.

    .. versionadded:: 0.2
    """

    access_key: str
    secret_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"S3Credentials(access_key={self.access_key!r}, secret_key=***)"


#: Environment variables naming the credentials of a real store (MinIO of docker-compose.yml).
ACCESS_KEY_ENV, SECRET_KEY_ENV = "DRDRILL_S3_ACCESS_KEY", "DRDRILL_S3_SECRET_KEY"


def default_credentials() -> S3Credentials:
    """Credentials every client uses unless given others.

    ``DRDRILL_S3_ACCESS_KEY`` and ``DRDRILL_S3_SECRET_KEY`` when both are set (a MinIO
    stack), else dummy ones, which moto accepts. Only these two variables are read,
    never ``AWS_*`` nor ``~/.aws``: a drill must not pick up the operator's own account.

    .. versionadded:: 0.4
    """
    access, secret = os.environ.get(ACCESS_KEY_ENV), os.environ.get(SECRET_KEY_ENV)
    if access and secret:
        return S3Credentials(access, secret)
    return S3Credentials(DUMMY_KEY, DUMMY_KEY)


_session_lock = threading.Lock()
_session: boto3.session.Session | None = None


def _hermetic_session() -> boto3.session.Session:
    """The process's one boto3 session, cut off from the user's AWS configuration.

    Creating a client from a shared session takes ~20 ms instead of ~120 ms, because the
    S3 model is parsed once. Callers hold ``_session_lock``: sessions are not thread-safe.
    """
    global _session
    if _session is None:
        core = botocore.session.Session()
        for variable in ("config_file", "credentials_file"):
            core.set_config_variable(variable, os.devnull)
        # An AWS_PROFILE naming a profile that the (empty) config lacks would raise.
        core.get_component("config_store").set_config_provider("profile", ConstantProvider(None))
        # The default loader also searches ~/.aws/models, where a user's model could live.
        core.register_component(
            "data_loader",
            Loader(
                extra_search_paths=[Loader.BUILTIN_DATA_PATH], include_default_search_paths=False
            ),
        )
        _session = boto3.session.Session(botocore_session=core)
    return _session


def s3_client(
    endpoint_url: str,
    *,
    timeout: float = 2.0,
    region: str = "us-east-1",
    credentials: S3Credentials | None = None,
) -> S3Client:
    """Return an S3 client for one endpoint, with path-style addressing and no retries.

    :param endpoint_url: ``http://host:port`` of the store or of a link in front of it.
    :param timeout: connect and read timeout, seconds, each.
    :param region: the region requests are signed for.
    :param credentials: real credentials; dummy ones (which moto accepts) by default.
    :returns: a thread-safe client; it never reads ``~/.aws`` nor the metadata service.

    .. versionadded:: 0.2
    """
    creds = credentials or default_credentials()
    host = urllib.parse.urlsplit(endpoint_url).hostname or ""
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        # total_max_attempts counts the first try; botocore's max_attempts does not.
        retries={"total_max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": "path"},
        # An HTTP(S)_PROXY from the environment must never sit in front of a loopback store.
        proxies={} if host in ("127.0.0.1", "localhost", "::1") else None,
    )
    with _session_lock:
        client = _hermetic_session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            aws_session_token=creds.session_token,
            config=config,
        )
    # With "Expect: 100-continue" a PUT to a frozen store waits a hard-coded 1 s for the
    # interim answer before read_timeout even starts; every call must end within timeout.
    client.meta.events.unregister("before-call.s3", botocore.handlers.add_expect_header)
    return client


def ensure_bucket(client: S3Client, bucket: str, *, versioned: bool = True) -> None:
    """Create ``bucket`` unless it exists, and turn versioning on.

    :param client: from :func:`s3_client`.
    :param bucket: the bucket name.
    :param versioned: enable versioning (replication needs it on the source).
    :raises botocore.exceptions.ClientError: when the store refuses.

    .. versionadded:: 0.2
    """
    region = client.meta.region_name
    try:
        if region and region != "us-east-1":
            client.create_bucket(
                Bucket=bucket,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
            )
        else:
            client.create_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    if versioned:
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def describe_error(exc: BaseException, timeout: float | None = None) -> str:
    """A short, one-line reason for a failed S3 call, for histories and health checks.

    :param exc: what the call raised.
    :param timeout: the call's timeout, to name it in timeout messages.

    .. versionadded:: 0.2
    """
    within = f" within {timeout}s" if timeout is not None else ""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "?")
        message = error.get("Message", "")
        return f"{exc.operation_name}: {code} {message}".strip()
    if isinstance(exc, botocore.exceptions.ConnectTimeoutError):
        return f"could not connect{within}"
    if isinstance(exc, botocore.exceptions.ConnectionError):
        return "could not connect"
    if isinstance(exc, botocore.exceptions.ReadTimeoutError | TimeoutError):
        return f"no answer{within}"
    if isinstance(exc, botocore.exceptions.ConnectionClosedError):
        return "connection closed before the answer"
    return (str(exc).splitlines() or [type(exc).__name__])[0]
