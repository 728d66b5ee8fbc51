"""Health checks of object stores, bounded on the client so a frozen store is caught in time."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

import botocore.exceptions

from pytest_drdrill import timing
from pytest_drdrill.clients.s3 import describe_error, s3_client
from pytest_drdrill.recovery.health import Health

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@functools.lru_cache(maxsize=32)
def _client(endpoint_url: str, timeout: float) -> S3Client:
    # Checks repeat every ~0.1 s; building a client costs 20-120 ms, so keep them.
    return s3_client(endpoint_url, timeout=timeout)


async def check_s3(endpoint_url: str, bucket: str, timeout: float) -> Health:
    """HeadBucket, giving up after ``timeout`` seconds in all.

    :param endpoint_url: the store (or the link in front of it) to check.
    :param bucket: a bucket that must exist there.
    :param timeout: seconds the check may take.
    :returns: ``ok`` when the bucket answered in time; ``error`` says why not.

    .. versionadded:: 0.2
    """
    # Built before the clock starts: only the first check per endpoint pays for it.
    client = await asyncio.to_thread(_client, endpoint_url, timeout)
    started = timing.monotonic()
    try:
        await asyncio.wait_for(asyncio.to_thread(client.head_bucket, Bucket=bucket), timeout)
    except (
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
        TimeoutError,
    ) as exc:
        elapsed = timing.monotonic() - started
        return Health(
            ok=False, started=started, seconds=elapsed, error=describe_error(exc, timeout)
        )
    return Health(ok=True, started=started, seconds=timing.monotonic() - started)
