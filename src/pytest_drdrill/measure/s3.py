"""The object-storage ledger: one object per acknowledged write, ``PREFIX`` + 12-digit id.

boto3 is synchronous, so every call runs in a worker thread. The client's connect and
read timeouts equal the call's timeout, so a thread left behind by a timed-out call ends
on its own soon after; the coroutine itself is bounded by :func:`asyncio.wait_for`.
Clients make exactly one attempt per call (see :func:`~pytest_drdrill.clients.s3.s3_client`):
a retried PUT would turn an indeterminate write into an acknowledged one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING

import botocore.exceptions

from pytest_drdrill import timing
from pytest_drdrill.clients.s3 import describe_error, s3_client
from pytest_drdrill.ledger import OBJECT_PREFIX
from pytest_drdrill.measure._protocol import Indeterminate, NotApplied

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from pytest_drdrill.clients.s3 import S3Credentials


class S3Ledger:
    """Writes ledger objects and probes with HeadBucket through an S3 endpoint.

    :param endpoint_url: the service endpoint (a link in front of the active region's store).
    :param bucket: the ledger's bucket; it must exist.
    :param prefix: key prefix of ledger objects.
    :param credentials: real credentials for MinIO or AWS; dummy ones by default.

    .. versionadded:: 0.2
    """

    service = "s3"

    def __init__(
        self,
        endpoint_url: str,
        bucket: str,
        *,
        prefix: str = OBJECT_PREFIX,
        credentials: S3Credentials | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.prefix = prefix
        self.credentials = credentials
        self._clients: dict[float, S3Client] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.endpoint_url}/{self.bucket}/{self.prefix}>"

    def key(self, op_id: int) -> str:
        """The object key of ``op_id``."""
        return f"{self.prefix}{op_id:012d}"

    def _client(self, timeout: float) -> S3Client:
        with self._lock:
            client = self._clients.get(timeout)
            if client is None:
                client = s3_client(self.endpoint_url, timeout=timeout, credentials=self.credentials)
                self._clients[timeout] = client
            return client

    async def _client_for(self, timeout: float) -> S3Client:
        # Built outside the bounded call, off the loop: the first client takes ~0.1 s.
        client = self._clients.get(timeout)
        if client is None:
            client = await asyncio.to_thread(self._client, timeout)
        return client

    async def write(self, op_id: int, timeout: float) -> None:
        """PutObject ``op_id``; the reply is the acknowledgement."""
        client = await self._client_for(timeout)
        call = asyncio.to_thread(
            client.put_object,
            Bucket=self.bucket,
            Key=self.key(op_id),
            Body=f"{op_id}\n".encode(),
            ContentType="text/plain",
        )
        try:
            await asyncio.wait_for(call, timeout)
        except (botocore.exceptions.ClientError, botocore.exceptions.ConnectionError) as exc:
            # The store refused it, or no connection was ever made: nothing was written.
            raise NotApplied(describe_error(exc, timeout)) from exc
        except (botocore.exceptions.BotoCoreError, TimeoutError) as exc:
            # The request went out; the store may have applied it before the answer was lost.
            raise Indeterminate(describe_error(exc, timeout)) from exc

    async def probe(self, timeout: float) -> None:
        """HeadBucket, bounded by ``timeout``; raises :class:`RuntimeError` on any failure."""
        client = await self._client_for(timeout)
        try:
            await asyncio.wait_for(
                asyncio.to_thread(client.head_bucket, Bucket=self.bucket), timeout
            )
        except (
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
            TimeoutError,
        ) as exc:
            raise RuntimeError(describe_error(exc, timeout)) from exc

    async def aclose(self) -> None:
        """Close every client's connection pool."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()

    def read_ids(self, *, timeout: float = 10.0) -> set[int]:
        """Every id in the ledger (ListObjectsV2), retried until ``timeout``.

        :raises botocore.exceptions.BotoCoreError: when the endpoint cannot be read in time.
        :raises botocore.exceptions.ClientError: when the store keeps refusing the listing.
        """
        deadline = timing.monotonic() + timeout
        client = self._client(min(2.0, timeout))
        while True:
            try:
                ids = set()
                pages = client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=self.prefix
                )
                for page in pages:
                    for item in page.get("Contents", []):
                        suffix = item["Key"][len(self.prefix) :]
                        if suffix.isdigit():
                            ids.add(int(suffix))
                return ids
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                if timing.monotonic() > deadline:
                    raise
                timing.sleep(0.05)
