"""Clients of the sample application's business functions, through DNS and the load balancer.

One client per business function (log in, upload, annotate, report) resolves the front
door's name with its own DNS resolver, which caches answers for their TTL as a real
client's does, then sends the function's request to the address it got. Each request is
recorded Jepsen-style, with its id, in the function's own history (the same
``function:<name>`` history that :mod:`.function_probes` fills for a team's own
application): ok when the application acknowledged it, fail when it certainly did not
apply, unknown (:attr:`~.Outcome.INFO`) when a write was sent and no answer proves
either. A function's RTO is measured from its history alone
(:func:`~.analysis.measure_rto`); its data loss is the acknowledged uploads and
annotations the application no longer has afterwards (:func:`function_loss`).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
from typing import TYPE_CHECKING, Any

from pytest_drdrill import timing
from pytest_drdrill.measure.analysis import measure_rpo, measure_rto
from pytest_drdrill.measure.function_probes import history_name
from pytest_drdrill.measure.history import Outcome, ProbeOp, WriteOp

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pytest_drdrill.measure.history import History
    from pytest_drdrill.results import RpoResult, RtoResult

#: The targets file's business function each client measures -> what the client does.
FUNCTIONS = {
    "user_authentication": "login",
    "video_upload": "upload",
    "annotation_system": "annotate",
    "reporting_and_analytics": "report",
}

#: Functions whose acknowledged requests are data that must survive the failover.
WRITES = {"upload": "videos", "annotate": "annotations"}

#: What HAProxy answers when it has no healthy replica: the request reached no replica.
_NO_SERVER = b"No server is available"


class Unanswered(Exception):
    """The request was sent and no answer came back: a write may or may not have applied."""


class Refused(Exception):
    """The request certainly reached no application replica."""


@dataclasses.dataclass(frozen=True)
class FrontDoor:
    """How clients reach the application: a DNS name, its server and the HTTP port.

    :param name: the DNS name.
    :param dns_host: the DNS server's address.
    :param dns_port: the DNS server's port.
    :param http_port: the port the load balancers listen on.
    """

    name: str
    dns_host: str
    dns_port: int
    http_port: int


class FrontDoorSession:
    """Resolves the front door through its DNS server, honouring the TTL, and sends requests.

    :param door: where the front door is.
    :param timeout: seconds one request (and one DNS query) may take.
    """

    def __init__(self, door: FrontDoor, *, timeout: float = 3.0) -> None:
        import dns.resolver

        self.door = door
        self.timeout = timeout
        self.resolver = dns.resolver.Resolver(configure=False)
        self.resolver.nameservers = [door.dns_host]
        self.resolver.port = door.dns_port
        self.resolver.lifetime = min(timeout, 1.0)
        # dnspython's cache keeps each answer until its TTL runs out, as a stub resolver does.
        self.resolver.cache = dns.resolver.Cache()
        self.token: str | None = None

    def address(self) -> str:
        """The front door's address now, from the cache while the answer's TTL lasts.

        :raises Refused: when the name does not resolve.
        """
        import dns.exception

        try:
            return str(self.resolver.resolve(self.door.name, "A")[0])
        except dns.exception.DNSException as exc:
            raise Refused(f"{self.door.name} did not resolve: {exc}") from exc

    def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        """Send one request; returns status and decoded JSON (``None`` when not JSON).

        :raises Refused: when no connection was made or HAProxy had no healthy replica.
        :raises Unanswered: when the request was sent and no answer came.
        """
        conn = http.client.HTTPConnection(self.address(), self.door.http_port, timeout=self.timeout)
        headers = {"Host": self.door.name, "Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            try:
                conn.connect()
            except OSError as exc:
                raise Refused(f"connect: {exc}") from exc
            try:
                conn.request(method, path, None if body is None else json.dumps(body), headers)
                reply = conn.getresponse()
                data = reply.read()
            except (OSError, http.client.HTTPException) as exc:
                raise Unanswered(f"{type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
        if reply.status == 503 and _NO_SERVER in data:
            raise Refused("the load balancer has no healthy replica")
        try:
            return reply.status, json.loads(data)
        except ValueError:
            return reply.status, None

    def log_in(self, user: str, password: str) -> None:
        """Get a session token; :meth:`call` sends it from then on.

        :raises Refused: also when the application refused the credentials.
        """
        status, reply = self.call("POST", "/login", {"name": user, "password": password})
        if status != 200:
            raise Refused(f"log in: HTTP {status} {reply}")
        self.token = reply["token"]


class AppFunctionClient:
    """Sends one business function's requests through the front door and records each.

    :param function: the targets file's business function (a key of :data:`FUNCTIONS`).
    :param door: the front door.
    :param history: the function's own history.
    :param interval: seconds between the starts of two requests.
    :param credentials: the user the client logs in as (created by :func:`add_user`).
    """

    def __init__(
        self,
        function: str,
        door: FrontDoor,
        history: History,
        *,
        interval: float = 0.1,
        credentials: tuple[str, str] = ("drill", "drill-password"),
        timeout: float = 3.0,
    ) -> None:
        self.function = function
        self.action = FUNCTIONS[function]
        self.session = FrontDoorSession(door, timeout=timeout)
        self.history = history
        self.interval = interval
        self.credentials = credentials
        self.next_id = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"drdrill-app-{function}", daemon=True
        )

    def start(self) -> AppFunctionClient:
        """Start sending."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the request in flight (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.session.timeout * 3 + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            invoked = timing.monotonic()
            op_id = self.next_id
            self.next_id += 1
            outcome, error = self.once(op_id)
            completed = timing.monotonic()
            self.history.record_write(WriteOp(op_id, invoked, completed, outcome, error))
            # The same request as a probe, so that what judges a team's probed functions
            # (measure_probe_rto, the guardrails) judges this one the same way.
            self.history.record_probe(ProbeOp(invoked, completed, outcome is Outcome.OK, error))
            self._stop.wait(max(0.0, invoked + self.interval - timing.monotonic()))

    def once(self, op_id: int) -> tuple[Outcome, str]:
        """Send request ``op_id`` of this function; what its answer proves, and why."""
        writes = self.action in WRITES
        try:
            if self.action != "login" and self.session.token is None:
                self.session.log_in(*self.credentials)
            status, reply = self._request(op_id)
        except Refused as exc:
            return Outcome.FAIL, str(exc)
        except Unanswered as exc:
            return (Outcome.INFO if writes else Outcome.FAIL), str(exc)
        if status == 401:
            # The session was lost (Redis failed over without it): log in again next time.
            self.session.token = None
            return Outcome.FAIL, "HTTP 401: session no longer known"
        if 200 <= status < 300:
            return Outcome.OK, ""
        # A replica answered with an error: a write may have applied before its store failed.
        return (
            Outcome.INFO if writes and status >= 500 else Outcome.FAIL
        ), f"HTTP {status} {reply}"

    def _request(self, op_id: int) -> tuple[int, Any]:
        call = self.session.call
        if self.action == "login":
            user, password = self.credentials
            return call("POST", "/login", {"name": user, "password": password})
        if self.action == "upload":
            return call("POST", "/videos", {"id": op_id, "content": f"video {op_id} " * 8})
        if self.action == "annotate":
            return call(
                "POST", "/annotations", {"id": op_id, "video_id": 0, "body": f"note {op_id}"}
            )
        return call("GET", "/report")


def add_user(door: FrontDoor, user: str = "drill", password: str = "drill-password") -> None:
    """Create the user the clients log in as, through the front door.

    :raises Refused: when the application does not create it.
    """
    status, reply = FrontDoorSession(door).call(
        "POST", "/users", {"name": user, "password": password}
    )
    if status != 201:
        raise Refused(f"creating user {user!r}: HTTP {status} {reply}")


def start_clients(
    door: FrontDoor, history_of: Callable[[str], History], *, interval: float = 0.1
) -> list[AppFunctionClient]:
    """One running client per business function, each recording into its history.

    :param history_of: the history of a name (``DrillRecord.history_of``); each client
        records into ``function:<its function>``.
    """
    add_user(door)
    clients = []
    for function in FUNCTIONS:
        history = history_of(history_name(function))
        clients.append(AppFunctionClient(function, door, history, interval=interval).start())
    return clients


def stop_clients(clients: Iterable[AppFunctionClient]) -> None:
    """Stop every client."""
    for client in clients:
        client.stop()


def function_rto(client: AppFunctionClient, fault_at: float) -> RtoResult:
    """The function's RTO from its own requests alone."""
    return measure_rto(client.history, fault_at)


def function_loss(client: AppFunctionClient, fault_at: float) -> RpoResult | None:
    """Acknowledged uploads or annotations the application no longer has; ``None`` for reads.

    Asks the application (through the front door) which acknowledged ids it still holds:
    an upload counts only with both its row and its object.
    """
    kind = WRITES.get(client.action)
    if kind is None:
        return None
    # Every attempted id, so that unacknowledged writes that applied anyway are counted apart.
    attempted = sorted({op.id for op in client.history.writes()})
    session = FrontDoorSession(client.session.door)
    status, reply = session.call("POST", "/inventory", {kind: attempted})
    if status != 200:
        raise Refused(f"inventory after the drill: HTTP {status} {reply}")
    return measure_rpo(client.history, reply[kind], fault_at)
