"""The ``probes:`` of a business function in the targets file, read and checked.

A probe is how a drill measures a team's own function end to end: an HTTP request to the
application, an SQL query on its database (the connection string named by an environment
variable, never written in the file), or a command. Every mistake is reported with the
file, the key path and the fix, like every other key of the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from pytest_drdrill.targets.fields import describe
from pytest_drdrill.targets.model import FunctionProbe, ProbeKind
from pytest_drdrill.targets.schema import COMMAND_PROBE, HTTP_PROBE, PROBE, SQL_PROBE

if TYPE_CHECKING:
    from pytest_drdrill.targets.fields import FieldReader

#: HTTP methods a probe may send.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
#: Seconds a probe's request may take when the file does not say.
DEFAULT_TIMEOUT = 2.0
_KINDS = {"http": HTTP_PROBE, "sql": SQL_PROBE, "command": COMMAND_PROBE}


def read_probes(reader: FieldReader, value: object, key: str) -> tuple[FunctionProbe, ...]:
    """The probes under ``key`` (``business_functions.<name>.probes``)."""
    if not isinstance(value, list) or not value:
        reader.fail(
            key,
            f"expected a list of probes, got {describe(value)}",
            "write e.g. probes: [{http: {url: 'https://app.example/health'}}]",
        )
    probes = [_probe(reader, item, f"{key}[{i}]", i) for i, item in enumerate(value)]
    names = [p.name for p in probes]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        reader.fail(key, f"two probes are named {duplicate!r}", "give each probe its own name: key")
    return tuple(probes)


def _probe(reader: FieldReader, value: object, key: str, index: int) -> FunctionProbe:
    entry = reader.mapping(value, key, PROBE)
    kinds = [k for k in _KINDS if k in entry]
    if len(kinds) != 1:
        reader.fail(
            key,
            f"a probe has exactly one of http, sql or command; this one has "
            f"{', '.join(kinds) or 'none'}",
            "split it into one probe per request"
            if kinds
            else "add one of http: {url: ...}, sql: {dsn_env: ..., query: ...} or "
            "command: {argv: [...]}",
        )
    kind = kinds[0]
    where = f"{key}.{kind}"
    settings = reader.mapping(entry[kind], where, _KINDS[kind])
    timeout = (
        reader.duration(settings["timeout"], f"{where}.timeout")
        if "timeout" in settings
        else DEFAULT_TIMEOUT
    )
    if timeout <= 0:
        reader.fail(f"{where}.timeout", "a probe's timeout must be above 0", "write e.g. 2s")
    checked = {"http": _http, "sql": _sql, "command": _command}[kind](reader, settings, where)
    name = reader.text(entry["name"], f"{key}.name") if "name" in entry else f"{kind}-{index + 1}"
    return FunctionProbe(name, cast(ProbeKind, kind), checked, timeout)


def _http(reader: FieldReader, settings: dict[str, Any], where: str) -> dict[str, Any]:
    url = reader.text(settings["url"], f"{where}.url")
    if not url.startswith(("http://", "https://")):
        reader.fail(
            f"{where}.url", f"{url!r} is not an http(s) URL", "write e.g. https://app/login"
        )
    method = str(settings.get("method", "GET")).upper()
    if method not in METHODS:
        reader.fail(f"{where}.method", f"unknown method {method!r}", f"use one of {METHODS}")
    status = settings.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        reader.fail(f"{where}.status", f"expected an HTTP status, got {describe(status)}",
                    "write the status a working function answers, e.g. 200")  # fmt: skip
    body = settings.get("body")
    if body is not None and not isinstance(body, str):
        reader.fail(f"{where}.body", f"expected text, got {describe(body)}",
                    "quote the body, e.g. body: '{\"user\": \"drill\"}'")  # fmt: skip
    headers = settings.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        reader.fail(f"{where}.headers", f"expected a mapping of text, got {describe(headers)}",
                    "write e.g. headers: {Content-Type: application/json}")  # fmt: skip
    return {"url": url, "method": method, "status": status, "body": body, "headers": headers}


def _sql(reader: FieldReader, settings: dict[str, Any], where: str) -> dict[str, Any]:
    variable = reader.text(settings["dsn_env"], f"{where}.dsn_env")
    if not variable.replace("_", "").isalnum():
        reader.fail(f"{where}.dsn_env", f"{variable!r} is not an environment variable's name",
                    "name the variable that holds the connection string, e.g. APP_DSN")  # fmt: skip
    query = reader.text(settings["query"], f"{where}.query")
    expect = settings.get("expect")
    if isinstance(expect, dict | list):
        reader.fail(f"{where}.expect", f"expected one value, got {describe(expect)}",
                    "write the first column of the first row a working query returns")  # fmt: skip
    return {"dsn_env": variable, "query": query, "expect": expect}


def _command(reader: FieldReader, settings: dict[str, Any], where: str) -> dict[str, Any]:
    argv = settings["argv"]
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
        reader.fail(f"{where}.argv", f"expected a list of arguments, got {describe(argv)}",
                    "write e.g. argv: [curl, -fsS, 'https://app.example/health']")  # fmt: skip
    return {"argv": list(argv)}
