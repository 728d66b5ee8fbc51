"""A typed client for the fault proxy's HTTP API.

It speaks Toxiproxy 2.x's API (proxies, toxics, ``/populate``, ``/reset``,
``/version``), which the built-in proxy implements too, so the same client drives
the built-in proxy and a real Toxiproxy server. Only the standard library is used,
and every request has a timeout.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Literal

from pytest_drdrill._version import __version__
from pytest_drdrill.errors import ProxyError
from pytest_drdrill.proxy.addresses import join_address, split_address
from pytest_drdrill.proxy.api_errors import MAX_ERROR_CHARS, hint, server_error
from pytest_drdrill.proxy.info import ProxyInfo, ToxicInfo

# ProxyInfo, ToxicInfo and the address helpers live in their own modules; they stay
# importable from here, where they were first published.
__all__ = ["ProxyClient", "ProxyInfo", "ToxicInfo", "join_address", "split_address"]

# Toxiproxy answers 403 to user agents starting with "Mozilla/" (its guard against
# browsers on localhost); a plain product token keeps us clear of that check.
_USER_AGENT = f"pytest-drdrill/{__version__}"


class ProxyClient:
    """Drive a fault proxy (the built-in one or a real Toxiproxy) over HTTP.

    Each call opens its own connection, so one client may be shared between threads.

    .. versionadded:: 0.1

    :param base_url: the API's address, e.g. ``http://127.0.0.1:8474``; ``http://`` is
        assumed when no scheme is given.
    :param timeout: seconds to wait for the connection and for each read of the answer.
    """

    def __init__(self, base_url: str, timeout: float = 2.0) -> None:
        if "://" not in base_url:
            base_url = f"http://{base_url}"
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"expected an http:// URL for the fault proxy API, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")

    def __repr__(self) -> str:
        return f"ProxyClient({self.base_url!r}, timeout={self.timeout!r})"

    def version(self) -> str:
        """Return the server's version.

        :returns: the version string. Toxiproxy up to 2.6 answers plain text; later
            releases and the built-in proxy answer a ``{"version": ...}`` object.
        :raises ProxyError: if the server cannot be reached or refuses.
        """
        data = self._request("GET", "/version", what="reading the version")
        text = data.decode("utf-8", "replace").strip()
        # A regex rather than json.loads: one Toxiproxy release sent this object as
        # invalid JSON (its changelog: "Fix invalid JSON in /version endpoint response").
        match = re.fullmatch(r'\{\s*"version"\s*:\s*"?([^"\s}]*)"?\s*\}', text)
        return match.group(1) if match else text

    def proxies(self) -> dict[str, ProxyInfo]:
        """Return every proxy, keyed by name.

        :raises ProxyError: if the server cannot be reached or refuses.
        """
        data = self._call("GET", "/proxies", what="listing proxies")
        if not isinstance(data, dict):
            raise ProxyError(f"listing proxies: expected a JSON object, got {data!r:.200}")
        return {name: ProxyInfo.from_json(proxy) for name, proxy in data.items()}

    def create(self, name: str, *, listen: str, upstream: str, enabled: bool = True) -> ProxyInfo:
        """Create a proxy.

        :param name: a name not used by another proxy.
        :param listen: ``host:port`` to listen on; port 0 picks a free port, which the
            returned :attr:`ProxyInfo.listen` reports.
        :param upstream: ``host:port`` to forward connections to.
        :param enabled: whether to start listening right away.
        :returns: the new proxy.
        :raises ProxyError: if the name is taken (HTTP 409), a field is invalid (400) or the
            address cannot be bound (500).
        """
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        what = f"creating proxy {name!r} ({listen} -> {upstream})"
        return ProxyInfo.from_json(self._call("POST", "/proxies", body, what=what, name=name))

    def get(self, name: str) -> ProxyInfo:
        """Return one proxy.

        :param name: the proxy's name.
        :raises ProxyError: if there is no such proxy (HTTP 404).
        """
        return ProxyInfo.from_json(
            self._call("GET", _proxy_path(name), what=f"reading proxy {name!r}", name=name)
        )

    def update(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> ProxyInfo:
        """Change some fields of a proxy; the fields left as ``None`` keep their value.

        Disabling closes the listener and every connection; changing ``listen`` or
        ``upstream`` restarts the proxy, closing its connections, so that new ones go to
        the new address. The change has taken effect when this returns.

        :param name: the proxy's name.
        :param listen: a new ``host:port`` to listen on.
        :param upstream: a new ``host:port`` to forward to.
        :param enabled: ``False`` takes the proxy down, ``True`` brings it back up.
        :returns: the proxy after the change.
        :raises ProxyError: if there is no such proxy (HTTP 404) or the change fails.
        """
        changes: dict[str, object] = {}
        if listen is not None:
            changes["listen"] = listen
        if upstream is not None:
            changes["upstream"] = upstream
        if enabled is not None:
            changes["enabled"] = enabled
        described = ", ".join(f"{key}={value!r}" for key, value in changes.items())
        # POST rather than PATCH: Toxiproxy before 2.6 accepts only POST here, and
        # later versions still accept it (deprecated, with a log line).
        data = self._call(
            "POST",
            _proxy_path(name),
            changes,
            what=f"updating proxy {name!r} ({described or 'no changes'})",
            name=name,
        )
        return ProxyInfo.from_json(data)

    def delete(self, name: str) -> None:
        """Delete a proxy and close its connections.

        :param name: the proxy's name.
        :raises ProxyError: if there is no such proxy (HTTP 404).
        """
        self._call("DELETE", _proxy_path(name), what=f"deleting proxy {name!r}", name=name)

    def populate(self, proxies: Iterable[Mapping[str, object]]) -> list[ProxyInfo]:
        """Create or replace several proxies at once.

        A proxy whose name exists keeps running untouched when its ``listen`` and
        ``upstream`` are unchanged; otherwise it is replaced.

        :param proxies: proxy objects with ``name``, ``listen``, ``upstream`` and
            optionally ``enabled`` (default true).
        :returns: the resulting proxies, in the order given.
        :raises ProxyError: if an entry is invalid (nothing is changed then) or a proxy
            cannot be started.
        """
        body = [dict(proxy) for proxy in proxies]
        names = ", ".join(repr(proxy.get("name")) for proxy in body)
        data = self._call("POST", "/populate", body, what=f"populating proxies {names}")
        listed = data.get("proxies") if isinstance(data, dict) else None
        # Toxiproxy encodes an empty result as null (a nil Go slice).
        if listed is None and isinstance(data, dict) and "proxies" in data:
            return []
        if not isinstance(listed, list):
            raise ProxyError(
                f"populating proxies: expected {{'proxies': [...]}}, got {data!r:.200}"
            )
        return [ProxyInfo.from_json(proxy) for proxy in listed]

    def reset(self) -> None:
        """Enable every proxy and remove every toxic.

        :raises ProxyError: if the server cannot be reached or a proxy cannot be restarted.
        """
        self._call("POST", "/reset", what="resetting all proxies")

    def toxics(self, proxy: str) -> list[ToxicInfo]:
        """Return the toxics of a proxy: upstream ones first, each stream in the order added.

        :param proxy: the proxy's name.
        :raises ProxyError: if there is no such proxy (HTTP 404).
        """
        data = self._call(
            "GET", _toxics_path(proxy), what=f"listing the toxics of proxy {proxy!r}", name=proxy
        )
        # Older Toxiproxy releases encode an empty list as null.
        if data is None:
            return []
        if not isinstance(data, list):
            raise ProxyError(f"listing toxics: expected a JSON list, got {data!r:.200}")
        return [ToxicInfo.from_json(toxic) for toxic in data]

    def toxic(self, proxy: str, name: str) -> ToxicInfo:
        """Return one toxic of a proxy.

        :param proxy: the proxy's name.
        :param name: the toxic's name.
        :raises ProxyError: if there is no such proxy or toxic (HTTP 404).
        """
        what = f"reading toxic {name!r} of proxy {proxy!r}"
        data = self._call("GET", _toxic_path(proxy, name), what=what, name=proxy, toxic=name)
        return ToxicInfo.from_json(data)

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        name: str | None = None,
        stream: Literal["upstream", "downstream"] = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, int | float] | None = None,
    ) -> ToxicInfo:
        """Add a toxic to a proxy; it applies to established connections too.

        Attributes per type (all whole numbers, missing ones are 0): ``latency``
        (``latency``, ``jitter`` in ms), ``bandwidth`` (``rate`` in KB/s), ``timeout``
        (``timeout`` in ms, 0 holds data forever), ``reset_peer`` (``timeout`` in ms),
        ``slow_close`` (``delay`` in ms), ``limit_data`` (``bytes``) and ``slicer``
        (``average_size``, ``size_variation`` in bytes, ``delay`` in µs).

        :param proxy: the proxy's name.
        :param type: the toxic's type.
        :param name: a name not used by another toxic of this proxy; by default
            ``"<type>_<stream>"``, as Toxiproxy names it.
        :param stream: ``"upstream"`` for bytes from the client to the server,
            ``"downstream"`` for bytes from the server to the client.
        :param toxicity: the probability, from 0 to 1, that it applies to a connection;
            drawn once per connection.
        :param attributes: the toxic's settings.
        :returns: the toxic as the server stored it.
        :raises ProxyError: if there is no such proxy (HTTP 404), the name is taken (409)
            or a field is invalid (400).
        """
        toxic_name = name or f"{type}_{stream}"
        body = {
            "name": toxic_name,
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        what = f"adding {type} toxic {toxic_name!r} ({stream}) to proxy {proxy!r}"
        data = self._call(
            "POST", _toxics_path(proxy), body, what=what, name=proxy, toxic=toxic_name
        )
        return ToxicInfo.from_json(data)

    def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        toxicity: float | None = None,
        attributes: Mapping[str, int | float] | None = None,
    ) -> ToxicInfo:
        """Change a toxic's toxicity or some of its attributes; the rest keep their value.

        :param proxy: the proxy's name.
        :param name: the toxic's name.
        :param toxicity: a new probability, from 0 to 1; drawn again for every connection.
        :param attributes: the attributes to change.
        :returns: the toxic after the change.
        :raises ProxyError: if there is no such proxy or toxic (HTTP 404), or a field is
            invalid (400).
        """
        body: dict[str, object] = {}
        if toxicity is not None:
            body["toxicity"] = toxicity
        if attributes is not None:
            body["attributes"] = dict(attributes)
        what = f"updating toxic {name!r} of proxy {proxy!r}"
        # POST rather than PATCH, for the same reason as in update().
        data = self._call("POST", _toxic_path(proxy, name), body, what=what, name=proxy, toxic=name)
        return ToxicInfo.from_json(data)

    def remove_toxic(self, proxy: str, name: str) -> None:
        """Remove a toxic from a proxy and from its established connections.

        Removing a ``timeout`` toxic closes the connections it stalled, as Toxiproxy does:
        the data it dropped leaves a hole in their streams.

        :param proxy: the proxy's name.
        :param name: the toxic's name.
        :raises ProxyError: if there is no such proxy or toxic (HTTP 404).
        """
        what = f"removing toxic {name!r} from proxy {proxy!r}"
        self._call("DELETE", _toxic_path(proxy, name), what=what, name=proxy, toxic=name)

    def _call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        what: str,
        name: str | None = None,
        toxic: str | None = None,
    ) -> object:
        data = self._request(method, path, body, what=what, name=name, toxic=toxic)
        if not data:
            return None
        try:
            decoded: object = json.loads(data)
        except ValueError as exc:
            raise ProxyError(
                f"{what}: {method} {self.base_url}{path} answered with a body that is not "
                f"JSON: {data[:MAX_ERROR_CHARS]!r}. Hint: check that {self.base_url} is the "
                "fault proxy's API address."
            ) from exc
        return decoded

    def _request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        what: str,
        name: str | None = None,
        toxic: str | None = None,
    ) -> bytes:
        url = f"{self.base_url}{path}"
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        connection_class = (
            http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(self._host, self._port, timeout=self.timeout)
        try:
            connection.request(method, f"{self._prefix}{path}", body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except ConnectionRefusedError as exc:
            raise ProxyError(
                f"{what} failed: {method} {url}: connection refused. Hint: nothing listens at "
                f"{self.base_url}, so the fault proxy process is not running (the built-in one "
                "exits with the pytest process that started it), or DRDRILL_TOXIPROXY_URL "
                "points elsewhere; start one with ProxyServer(workdir).start()."
            ) from exc
        except TimeoutError as exc:
            raise ProxyError(
                f"{what} failed: {method} {url}: no answer within {self.timeout} s. Hint: the "
                "fault proxy may be frozen or overloaded; pass ProxyClient(timeout=...) to "
                "wait longer."
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ProxyError(
                f"{what} failed: {method} {url}: {exc!r}. Hint: check that {self.base_url} is "
                "the fault proxy's API address."
            ) from exc
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            error = server_error(data)
            advice = hint(response.status, error, path, name, toxic, self.base_url)
            raise ProxyError(
                f"{what} failed: {method} {url} answered HTTP {response.status}: {error}. "
                f"Hint: {advice}"
            )
        return data


def _proxy_path(name: str) -> str:
    return f"/proxies/{urllib.parse.quote(name, safe='')}"


def _toxics_path(proxy: str) -> str:
    return f"{_proxy_path(proxy)}/toxics"


def _toxic_path(proxy: str, name: str) -> str:
    return f"{_toxics_path(proxy)}/{urllib.parse.quote(name, safe='')}"
