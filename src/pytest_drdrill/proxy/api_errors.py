"""Turning the fault proxy's error answers into messages a user can act on.

A failed API call says what was tried, what the server answered and a hint for the
likely cause (a missing proxy, a name already taken, a bad field). The hints depend only
on the HTTP status and on what was asked for, so they live here rather than among the
client's requests.
"""

from __future__ import annotations

import json

__all__ = ["MAX_ERROR_CHARS", "hint", "server_error"]

#: Keeps error messages readable when a server answers with an HTML page or a stack trace.
MAX_ERROR_CHARS = 500


def server_error(data: bytes) -> str:
    """Return the error text of an answer's body, shortened for a message.

    :param data: the body of a failed answer (JSON with an ``error`` field, or anything).
    :returns: the server's message, or the body itself, at most :data:`MAX_ERROR_CHARS` long.
    """
    text = data.decode("utf-8", "replace").strip()
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        # Toxiproxy before 2.1 named this field "title".
        message = decoded.get("error", decoded.get("title"))
        if isinstance(message, str):
            text = message
    return text[:MAX_ERROR_CHARS] or "(empty body)"


def hint(
    status: int, error: str, path: str, name: str | None, toxic: str | None, base_url: str
) -> str:
    """Return the likely cause of a failed call and how to fix it.

    :param status: the HTTP status of the answer.
    :param error: the server's error text (see :func:`server_error`).
    :param path: the API path that was asked for.
    :param name: the proxy the call was about, if any.
    :param toxic: the toxic the call was about, if any.
    :param base_url: the API's address.
    :returns: the hint, a sentence or two.
    """
    if status == 404 and toxic is not None and "toxic" in error:
        return (
            f"proxy {name!r} has no toxic named {toxic!r}; list them with "
            f"ProxyClient.toxics({name!r}) or add it first."
        )
    if status == 404 and name is not None:
        return (
            f"no proxy named {name!r} exists at {base_url}; list them with "
            "ProxyClient.proxies() or create it first."
        )
    if status == 404:
        return f"{base_url} does not serve {path}; is it a Toxiproxy-compatible API?"
    if status == 409 and toxic is not None:
        return (
            f"proxy {name!r} already has a toxic named {toxic!r}; remove_toxic() it first, "
            "update_toxic() it, or pass add_toxic(name=...) another name."
        )
    if status == 409:
        return (
            f"a proxy named {name!r} already exists; delete() it first, or use populate() "
            "to create or replace."
        )
    if status == 400 and toxic is not None:
        return (
            "check the toxic's fields: type is one of latency, bandwidth, timeout, reset_peer, "
            "slow_close, limit_data, slicer; stream is upstream or downstream; toxicity is from "
            "0 to 1; attributes are whole numbers >= 0 named as for that type."
        )
    if status == 400:
        return (
            "check the fields sent: name and upstream are required, listen and upstream are "
            "host:port strings, enabled is true or false."
        )
    if status == 403:
        return "the server refused the request; Toxiproxy rejects browser user agents."
    if status == 501:
        return "this server does not implement that request; its error above says what to use."
    if status >= 500:
        return (
            "the server could not apply the change (often the listen address is already in "
            "use); see the fault proxy's log."
        )
    return "see the fault proxy's log."
