"""Where drill notifications go: a file, a webhook, or standard output.

A sink is chosen by a spec string, given with ``--drill-notify`` / ``drill_notify`` and
read by :func:`parse_sink`:

* ``stdout``: print each message;
* ``file:PATH``: append one JSON object per line to PATH;
* ``http://...`` or ``https://...``: POST each message as JSON to the URL.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import hashlib
import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pytest_drdrill import timing
from pytest_drdrill.errors import DrillError

if TYPE_CHECKING:
    from email.message import Message as _Headers
    from typing import IO

_SPEC_HELP = (
    "accepted sinks are 'stdout', 'file:PATH' (one JSON line per message) and an "
    "'http://...' or 'https://...' webhook URL; set them with --drill-notify / drill_notify"
)


class DeliveryError(DrillError, RuntimeError):
    """A sink could not deliver a notification.

    .. versionadded:: 0.3
    """


class SinkSpecError(DrillError, ValueError):
    """A ``--drill-notify`` / ``drill_notify`` value names no known sink.

    .. versionadded:: 0.3
    """


@dataclasses.dataclass(frozen=True)
class Message:
    """One rendered notification for one audience.

    .. versionadded:: 0.3

    :param template: the template it was rendered from, e.g. ``internal_alert``.
    :param audience: who it is for, e.g. ``immediate_team``.
    :param subject: one line, starting with ``[DRILL]``.
    :param body: the text.
    :param incident_id: the drill's incident.
    """

    template: str
    audience: str
    subject: str
    body: str
    incident_id: str

    def to_json(self, sent_at: str) -> dict[str, object]:
        """The message as a sink writes it.

        :param sent_at: the delivery time, ISO 8601 UTC.
        :returns: a JSON-ready mapping.
        """
        return {
            "drill": True,
            "incident_id": self.incident_id,
            "audience": self.audience,
            "template": self.template,
            "subject": self.subject,
            "body": self.body,
            "sent_at": sent_at,
        }


class Sink(Protocol):
    """Something a notification can be delivered to.

    .. versionadded:: 0.3
    """

    @property
    def spec(self) -> str:
        """The spec string that selects this sink, as :func:`parse_sink` reads it."""
        ...

    def deliver(self, message: Message) -> str:
        """Deliver one message, and return once it is delivered.

        :param message: what to deliver.
        :returns: a short confirmation for the drill report, e.g. ``HTTP 200``.
        :raises DeliveryError: when the message could not be delivered.
        """
        ...


def _now_iso() -> str:
    return _dt.datetime.fromtimestamp(timing.wall(), tz=_dt.UTC).isoformat(timespec="microseconds")


class FileSink:
    """Append each message to a file as one JSON object per line.

    .. versionadded:: 0.3

    :param path: the file; it and its parent directories are created when missing.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def spec(self) -> str:
        """``file:PATH``."""
        return f"file:{self.path}"

    def deliver(self, message: Message) -> str:
        """Append the message and fsync the file before returning.

        :param message: what to write.
        :returns: ``appended to PATH``.
        :raises DeliveryError: when the file cannot be written.
        """
        line = json.dumps(message.to_json(_now_iso()), ensure_ascii=False) + "\n"
        data = line.encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One O_APPEND write per line, so drills appending to the same file at once
            # (xdist workers) do not interleave inside a line.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise DeliveryError(
                f"cannot append the {message.template} notification for {message.audience} "
                f"to {self.path}: {exc}; choose a writable path with "
                "--drill-notify=file:PATH / drill_notify"
            ) from exc
        return f"appended to {self.path}"


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # urllib turns a redirected POST into a GET without the body: the message would be
    # lost while the final answer still said 200. A redirect is reported as a failure.
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: _Headers,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def redact_url(url: str) -> str:
    """``url`` as reports may show it: no user info, no query, only the first path segment.

    Webhook URLs carry their secret in the path (``/services/T0/B1/token``), the query
    (``?token=``) or the user info; what is left names the receiver without its key, and a
    short digest of the whole URL keeps two webhooks on one host apart. A URL with at most
    one path segment and neither query nor user info is shown as it is.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) <= 1 and not (parts.query or parts.username or parts.password):
        return url  # nothing in it that could be a key
    path = f"/{segments[0]}/…" if segments else "/…"
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{path} [{digest}]"


class WebhookSink:
    """POST each message as JSON to a URL; only a 2xx answer counts as delivered.

    User info in the URL (``https://user:password@host/...``) is sent as HTTP Basic
    authentication. Reports and messages name the webhook by :func:`redact_url` only.

    .. versionadded:: 0.3

    :param url: an ``http://`` or ``https://`` URL.
    :param timeout: seconds to wait for the connection and for the answer.
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        parts = urllib.parse.urlsplit(url)
        self._headers: dict[str, str] = {}
        if parts.username is not None or parts.password is not None:
            user = urllib.parse.unquote(parts.username or "")
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
            netloc = parts.netloc.rpartition("@")[2]
            parts = parts._replace(netloc=netloc)
        self._target = urllib.parse.urlunsplit(parts)
        self.url = redact_url(url)
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_RefuseRedirects)

    @property
    def spec(self) -> str:
        """The URL, redacted (:func:`redact_url`)."""
        return self.url

    def deliver(self, message: Message) -> str:
        """POST the message and wait for the answer.

        :param message: what to send.
        :returns: ``HTTP <status>``.
        :raises DeliveryError: on a non-2xx answer, a timeout, or no connection; the
            message names the URL and the status.
        """
        payload = json.dumps(message.to_json(_now_iso()), ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(
            self._target,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "pytest-drdrill",
                **self._headers,
            },
        )
        fix = "check the URL given with --drill-notify / drill_notify and the receiver"
        what = f"the {message.template} notification for {message.audience}"
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                response.read()
        except urllib.error.HTTPError as exc:
            # The error holds the open response; left to the garbage collector, its socket
            # would be closed with a ResourceWarning at some unrelated later point.
            exc.close()
            raise DeliveryError(
                f"webhook {self.url} answered HTTP {exc.code} {exc.reason} to {what}; "
                f"only a 2xx answer counts as delivered: {fix}"
            ) from exc
        except urllib.error.URLError as exc:
            raise DeliveryError(
                f"could not reach webhook {self.url} with {what}: {exc.reason}; {fix}"
            ) from exc
        except TimeoutError as exc:
            raise DeliveryError(
                f"webhook {self.url} did not answer {what} within {self.timeout:g}s; {fix}"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"webhook {self.url} failed on {what}: {exc!r}; {fix}") from exc
        if not 200 <= status < 300:
            raise DeliveryError(
                f"webhook {self.url} answered HTTP {status} to {what}; only a 2xx answer "
                f"counts as delivered: {fix}"
            )
        return f"HTTP {status}"


class StdoutSink:
    """Print each message to standard output.

    .. versionadded:: 0.3
    """

    @property
    def spec(self) -> str:
        """``stdout``."""
        return "stdout"

    def deliver(self, message: Message) -> str:
        """Print the message with a header line naming its template and audience.

        :param message: what to print.
        :returns: ``printed to stdout``.
        """
        # Looked up at each call so pytest's capture, which swaps sys.stdout, sees it.
        out = sys.stdout
        out.write(
            f"----- {message.template} -> {message.audience} ({message.incident_id}) -----\n"
            f"Subject: {message.subject}\n\n{message.body}\n"
        )
        out.flush()
        return "printed to stdout"


def parse_sink(spec: str, *, timeout: float = 5.0) -> Sink:
    """Build the sink a spec string names.

    .. versionadded:: 0.3

    :param spec: ``stdout``, ``file:PATH``, or an ``http://`` / ``https://`` URL.
    :param timeout: the webhook timeout, in seconds.
    :returns: the sink.
    :raises SinkSpecError: (a :class:`ValueError`) naming the spec and the accepted forms.
    """
    text = spec.strip()
    if text == "stdout":
        return StdoutSink()
    if text.startswith("file:"):
        path = text[len("file:") :]
        if not path:
            raise SinkSpecError(
                f"notification sink {spec!r} has no path after 'file:'; " + _SPEC_HELP
            )
        return FileSink(Path(path))
    scheme, sep, rest = text.partition("://")
    if sep and scheme.lower() in ("http", "https") and rest.split("/", 1)[0]:
        return WebhookSink(text, timeout=timeout)
    raise SinkSpecError(f"unknown notification sink {spec!r}: " + _SPEC_HELP)
