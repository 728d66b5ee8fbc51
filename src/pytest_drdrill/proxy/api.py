"""The fault proxy's HTTP API: Toxiproxy 2.x's, with its status codes and JSON bodies.

Proxies (create, read, update, delete), toxics (the same, per proxy), ``/populate``,
``/reset`` and ``/version``. The API is served from a thread and hands every request to
the event loop, answering only once the change has taken effect on every connection.
Validation is stricter than Toxiproxy's: a misspelt attribute or an out-of-range value
answers 400 and names the allowed values instead of being read as 0.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

from pytest_drdrill._version import __version__
from pytest_drdrill.proxy.addresses import split_address
from pytest_drdrill.proxy.forwarder import ApiError, _Proxy
from pytest_drdrill.proxy.toxics import STREAMS, TOXIC_ATTRIBUTES, Stream, Toxic

logger = logging.getLogger("pytest_drdrill.proxy")

VERSION = f"{__version__}+drdrill"

# How long an API request may wait for the event loop; Toxiproxy's own handler timeout is 25 s.
_API_TIMEOUT = 25.0
# Toxiproxy's own messages, kept so that clients matching on them keep working.
_INVALID_STREAM = "stream was invalid, can be either upstream or downstream"
_INVALID_TYPE = "invalid toxic type"


def _field(body: dict[str, Any], key: str, kind: type, *, required: bool) -> Any:
    if key not in body:
        if required:
            raise ApiError(400, f"missing required field: {key}")
        return None
    value = body[key]
    if not isinstance(value, kind) or (kind is str and not value):
        expected = "true or false" if kind is bool else "a non-empty string"
        raise ApiError(400, f"bad request body: field {key!r} must be {expected}, got {value!r}")
    if key in ("listen", "upstream"):
        try:
            split_address(str(value))
        except ValueError as exc:
            raise ApiError(400, f"bad request body: field {key!r}: {exc}") from None
    return value


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise ApiError(400, f"bad request body: {exc}") from None


class _ProxySpec:
    """A validated proxy definition from a request body."""

    def __init__(self, body: object, *, where: str = "") -> None:
        if not isinstance(body, dict):
            raise ApiError(400, f"bad request body{where}: expected a JSON object")
        self.name: str = _field(body, "name", str, required=True)
        self.listen: str = _field(body, "listen", str, required=True)
        self.upstream: str = _field(body, "upstream", str, required=True)
        enabled = _field(body, "enabled", bool, required=False)
        self.enabled: bool = True if enabled is None else enabled


def _toxicity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ApiError(
            400,
            "bad request body: field 'toxicity' must be a number from 0 to 1 (the share of "
            f"connections the toxic applies to), got {value!r}",
        )
    return float(value)


def _attributes(kind: str, value: object, current: dict[str, int]) -> dict[str, int]:
    allowed = TOXIC_ATTRIBUTES[kind]
    described = ", ".join(f"{name} ({unit})" for name, unit in allowed.items())
    if not isinstance(value, dict):
        raise ApiError(
            400,
            f"bad request body: field 'attributes' must be a JSON object; a {kind} toxic "
            f"takes {described}",
        )
    result = dict(current)
    for key, number in value.items():
        if key not in allowed:
            raise ApiError(
                400,
                f"bad request body: unknown attribute {key!r} for a {kind} toxic; allowed "
                f"attributes: {described}",
            )
        whole = isinstance(number, int) or (isinstance(number, float) and number.is_integer())
        if isinstance(number, bool) or not whole or cast(float, number) < 0:
            raise ApiError(
                400,
                f"bad request body: attribute {key!r} of a {kind} toxic must be a whole "
                f"number >= 0 ({allowed[key]}), got {number!r}",
            )
        result[key] = int(number)
    if kind == "slicer" and not 0 <= result["size_variation"] < result["average_size"]:
        raise ApiError(
            400,
            "bad request body: a slicer toxic needs average_size >= 1 and size_variation "
            f"below average_size, got average_size={result['average_size']} and "
            f"size_variation={result['size_variation']}",
        )
    return result


def _new_toxic(body: object) -> Toxic:
    """Validate a toxic definition in the order Toxiproxy does: stream, type, name, the rest."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad request body: expected a JSON object")
    stream = body.get("stream") or "downstream"
    if stream not in STREAMS:
        raise ApiError(400, f"{_INVALID_STREAM}; field 'stream' got {stream!r}")
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in TOXIC_ATTRIBUTES:
        raise ApiError(
            400,
            f"{_INVALID_TYPE}: field 'type' got {kind!r}; allowed types: "
            + ", ".join(sorted(TOXIC_ATTRIBUTES)),
        )
    name = body.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str):
        raise ApiError(400, f"bad request body: field 'name' must be a string, got {name!r}")
    toxicity = _toxicity(body.get("toxicity", 1.0))
    defaults = dict.fromkeys(TOXIC_ATTRIBUTES[kind], 0)
    attributes = _attributes(kind, body.get("attributes") or {}, defaults)
    return Toxic(name, kind, cast(Stream, stream), toxicity, attributes)


def _updated_toxic(toxic: Toxic, body: object) -> Toxic:
    """Apply a toxic update: ``toxicity`` and ``attributes``, merged into the current ones."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad request body: expected a JSON object")
    for key in ("name", "type", "stream"):
        if key in body and body[key] != getattr(toxic, key):
            raise ApiError(
                400,
                f"bad request body: field {key!r} of a toxic cannot be changed (it is "
                f"{getattr(toxic, key)!r}); delete the toxic and add a new one instead",
            )
    toxicity = _toxicity(body["toxicity"]) if "toxicity" in body else toxic.toxicity
    attributes = _attributes(toxic.type, body.get("attributes") or {}, toxic.attributes)
    return Toxic(toxic.name, toxic.type, toxic.stream, toxicity, attributes)


class ProxyApp:
    """The proxies of one server process and the API operations on them.

    Every coroutine here runs on the event loop; a lock serialises API operations so
    that one change finishes (connections cut, listener rebound) before the next starts.
    """

    def __init__(self) -> None:
        self._proxies: dict[str, _Proxy] = {}
        self._lock = asyncio.Lock()

    async def handle(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        """Answer one API request.

        :param method: the HTTP method.
        :param path: the request path, still percent-encoded.
        :param body: the request body.
        :returns: the HTTP status and the JSON value to send (``None`` for no body).
        :raises ApiError: for every request that fails.
        """
        parts = [urllib.parse.unquote(part) for part in path.strip("/").split("/")]
        async with self._lock:
            return await self._route(method, parts, body)

    async def _route(self, method: str, parts: list[str], body: bytes) -> tuple[int, object]:
        allowed: dict[str, Callable[[], Awaitable[tuple[int, object]]]]
        match parts:
            case ["version"]:
                allowed = {"GET": lambda: self._ok({"version": VERSION})}
            case ["proxies"]:
                allowed = {"GET": self._index, "POST": lambda: self._create(body)}
            case ["populate"]:
                allowed = {"POST": lambda: self._populate(body)}
            case ["reset"]:
                allowed = {"POST": self._reset}
            case ["proxies", name]:
                allowed = {
                    "GET": lambda: self._show(name),
                    "POST": lambda: self._update(name, body),
                    "PATCH": lambda: self._update(name, body),
                    "DELETE": lambda: self._delete(name),
                }
            case ["proxies", name, "toxics"]:
                allowed = {
                    "GET": lambda: self._toxics(name),
                    "POST": lambda: self._add_toxic(name, body),
                }
            case ["proxies", name, "toxics", toxic]:
                allowed = {
                    "GET": lambda: self._show_toxic(name, toxic),
                    "POST": lambda: self._update_toxic(name, toxic, body),
                    "PATCH": lambda: self._update_toxic(name, toxic, body),
                    "DELETE": lambda: self._remove_toxic(name, toxic),
                }
            case _:
                raise ApiError(404, "404 page not found")
        handler = allowed.get(method)
        if handler is None:
            raise ApiError(405, f"method {method} not allowed here")
        return await handler()

    async def close(self) -> None:
        """Stop every proxy, cutting its connections."""
        async with self._lock:
            for proxy in self._proxies.values():
                await proxy.stop()

    def _get(self, name: str) -> _Proxy:
        proxy = self._proxies.get(name)
        if proxy is None:
            raise ApiError(404, "proxy not found")
        return proxy

    @staticmethod
    async def _ok(value: object, status: int = 200) -> tuple[int, object]:
        return status, value

    async def _index(self) -> tuple[int, object]:
        return 200, {name: proxy.to_json() for name, proxy in self._proxies.items()}

    async def _show(self, name: str) -> tuple[int, object]:
        return 200, self._get(name).to_json()

    async def _create(self, body: bytes) -> tuple[int, object]:
        spec = _ProxySpec(_decode(body))
        if spec.name in self._proxies:
            raise ApiError(409, "proxy already exists")
        proxy = _Proxy(spec.name, spec.listen, spec.upstream)
        if spec.enabled:
            await proxy.start()
        self._proxies[spec.name] = proxy
        return 201, proxy.to_json()

    async def _update(self, name: str, body: bytes) -> tuple[int, object]:
        proxy = self._get(name)
        data = _decode(body)
        if not isinstance(data, dict):
            raise ApiError(400, "bad request body: expected a JSON object")
        listen = _field(data, "listen", str, required=False) or proxy.listen
        upstream = _field(data, "upstream", str, required=False) or proxy.upstream
        enabled = _field(data, "enabled", bool, required=False)
        if enabled is None:
            enabled = proxy.enabled
        # As in Toxiproxy: a new address restarts the proxy, which cuts its connections
        # so that clients reconnect to the new upstream ("repointing" a service).
        if listen != proxy.listen or upstream != proxy.upstream:
            await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        if enabled and not proxy.enabled:
            await proxy.start()
        elif not enabled and proxy.enabled:
            await proxy.stop()
        return 200, proxy.to_json()

    async def _delete(self, name: str) -> tuple[int, object]:
        proxy = self._get(name)
        del self._proxies[name]
        await proxy.stop()
        return 204, None

    async def _populate(self, body: bytes) -> tuple[int, object]:
        data = _decode(body)
        if not isinstance(data, list):
            raise ApiError(400, "bad request body: expected a JSON list of proxies")
        # Validate everything before changing anything, so a bad entry leaves no half-applied state.
        specs = [_ProxySpec(item, where=f" at proxy {i}") for i, item in enumerate(data, 1)]
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ApiError(400, f"bad request body: duplicate proxy names {duplicates}")
        result = []
        for spec in specs:
            existing = self._proxies.get(spec.name)
            if (
                existing is not None
                and existing.listen == spec.listen
                and existing.upstream == spec.upstream
            ):
                result.append(existing.to_json())
                continue
            if existing is not None:
                await existing.stop()
                del self._proxies[spec.name]
            proxy = _Proxy(spec.name, spec.listen, spec.upstream)
            if spec.enabled:
                await proxy.start()
            self._proxies[spec.name] = proxy
            result.append(proxy.to_json())
        return 201, {"proxies": result}

    async def _reset(self) -> tuple[int, object]:
        for proxy in self._proxies.values():
            await proxy.start()
            for name in list(proxy.toxics):
                proxy.remove_toxic(name)
        return 204, None

    def _get_toxic(self, proxy: _Proxy, name: str) -> Toxic:
        toxic = proxy.toxics.get(name)
        if toxic is None:
            raise ApiError(404, "toxic not found")
        return toxic

    async def _toxics(self, name: str) -> tuple[int, object]:
        return 200, self._get(name).toxics_json()

    async def _add_toxic(self, name: str, body: bytes) -> tuple[int, object]:
        proxy = self._get(name)
        toxic = _new_toxic(_decode(body))
        if toxic.name in proxy.toxics:
            raise ApiError(409, "toxic already exists")
        proxy.add_toxic(toxic)
        # Toxiproxy answers 200 here, not 201 as for a new proxy.
        return 200, toxic.to_json()

    async def _show_toxic(self, name: str, toxic: str) -> tuple[int, object]:
        return 200, self._get_toxic(self._get(name), toxic).to_json()

    async def _update_toxic(self, name: str, toxic: str, body: bytes) -> tuple[int, object]:
        proxy = self._get(name)
        updated = _updated_toxic(self._get_toxic(proxy, toxic), _decode(body))
        proxy.update_toxic(updated)
        return 200, updated.to_json()

    async def _remove_toxic(self, name: str, toxic: str) -> tuple[int, object]:
        proxy = self._get(name)
        self._get_toxic(proxy, toxic)
        proxy.remove_toxic(toxic)
        return 204, None


class _ApiServer(http.server.ThreadingHTTPServer):
    def __init__(
        self, address: tuple[str, int], app: ProxyApp, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.app = app
        self.loop = loop
        super().__init__(address, _ApiHandler)

    def submit(self, coro: Coroutine[Any, Any, tuple[int, object]]) -> tuple[int, object]:
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:
            coro.close()
            raise ApiError(503, "the fault proxy is shutting down") from None
        try:
            return future.result(timeout=_API_TIMEOUT)
        except TimeoutError:
            future.cancel()
            raise ApiError(500, f"the change did not finish within {_API_TIMEOUT} s") from None


class _ApiHandler(http.server.BaseHTTPRequestHandler):
    server: _ApiServer
    protocol_version = "HTTP/1.1"
    server_version = f"pytest-drdrill-proxy/{__version__}"
    # A client that stalls mid-request must not hold a thread forever.
    timeout = 15

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length header")
            return
        body = self.rfile.read(length) if length > 0 else b""
        try:
            # Same guard as Toxiproxy: a web page must not be able to drive a local proxy.
            if self.headers.get("User-Agent", "").startswith("Mozilla/"):
                raise ApiError(403, "User agent not allowed")
            path = urllib.parse.urlsplit(self.path).path
            status, value = self.server.submit(self.server.app.handle(self.command, path, body))
        except ApiError as exc:
            status, value = exc.status, exc.to_json()
        except Exception as exc:
            logger.exception("unexpected error answering %s %s", self.command, self.path)
            status, value = 500, ApiError(500, repr(exc)).to_json()
        self._send(status, value)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server answers malformed requests and unknown methods itself, in HTML;
        # clients of a Toxiproxy-style API expect the JSON error body instead.
        self.close_connection = True
        self._send(code, ApiError(code, message or explain or "bad request").to_json())

    def _send(self, status: int, value: object) -> None:
        self.send_response(status)
        if self.close_connection:
            self.send_header("Connection", "close")
        if status == 204:
            self.end_headers()
            return
        data = json.dumps(value).encode() + b"\n"
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("api %s: " + format, self.address_string(), *args)
