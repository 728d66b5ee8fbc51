"""The three message templates of the communication plan, loaded and rendered.

A template directory holds ``internal_alert.txt``, ``customer_notification.txt`` and
``recovery_announcement.txt`` (UTF-8). The package ships the defaults; the repository
keeps identical editable copies in ``fixtures/communication/``. Placeholders use
:meth:`str.format` syntax, ``{incident_id}``, and a literal brace is written twice,
``{{`` or ``}}``.

``str.format`` rather than jinja2: the requirements write their templates in that syntax,
so the user's texts work unchanged, and :class:`string.Formatter` can list every
placeholder when a file is loaded, so a mistake is reported before a drill starts
rather than when the first message is due. Only plain names are accepted: ``{a.b}`` or
``{a[0]}`` could reach into objects, and the values are all strings anyway.

A first line ``Subject: ...`` becomes the message's subject and is left out of its body;
without one, the first non-blank line is the subject and the body is the whole text.
Every rendered message is marked as a drill (:data:`DRILL_MARKER`) by the renderer, not
by the template, so a user's own template cannot leave the marker out.
"""

from __future__ import annotations

import dataclasses
import difflib
import string
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pytest_drdrill.errors import DrillError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from importlib.resources.abc import Traversable

TemplateName = Literal["internal_alert", "customer_notification", "recovery_announcement"]

TEMPLATE_NAMES: tuple[TemplateName, ...] = (
    "internal_alert",
    "customer_notification",
    "recovery_announcement",
)
"""The templates a template directory must hold, as ``<name>.txt``."""

INCIDENT_FIELDS: frozenset[str] = frozenset(
    {
        "incident_id",
        "severity",
        "start_time",
        "affected_services",
        "affected_features",
        "issue_description",
        "current_status",
        "estimated_recovery",
        "actions_taken",
        "incident_commander",
        "communication_channel",
        "status_page_url",
        "report_url",
        "next_update_time",
    }
)
"""Placeholders known from the moment the incident is detected."""

RECOVERY_FIELDS: frozenset[str] = frozenset(
    {"resolution_time", "root_cause", "services_affected", "total_duration"}
)
"""Placeholders known only once recovery is measured."""

FIELDS: Mapping[TemplateName, frozenset[str]] = {
    "internal_alert": INCIDENT_FIELDS,
    "customer_notification": INCIDENT_FIELDS,
    "recovery_announcement": INCIDENT_FIELDS | RECOVERY_FIELDS,
}
"""The placeholders each template may use."""

DRILL_MARKER = "[DRILL]"
"""Starts the subject and the body of every message a drill sends."""

_DRILL_NOTICE = (
    f"{DRILL_MARKER} This message was sent by a disaster-recovery drill (pytest-drdrill), "
    "not by a real outage."
)

_TEMPLATE_DIR_HINT = (
    "choose another template directory with --drill-notify-templates / "
    "drill_notify_templates, or start from the defaults in fixtures/communication/"
)


class TemplateError(DrillError, ValueError):
    """A communication template is missing, malformed, or cannot be filled in.

    .. versionadded:: 0.3
    """


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A template filled in for one incident.

    .. versionadded:: 0.3

    :param subject: one line, starting with :data:`DRILL_MARKER`.
    :param body: the text, starting with a line that says it comes from a drill.
    """

    subject: str
    body: str


@dataclasses.dataclass(frozen=True)
class Template:
    """One checked template.

    .. versionadded:: 0.3

    :param name: which of :data:`TEMPLATE_NAMES` it is.
    :param source: the file it was read from, for error messages.
    :param text: the template text.
    :param placeholders: the names it uses, in order of first use.
    """

    name: TemplateName
    source: str
    text: str
    placeholders: tuple[str, ...]

    def render(self, fields: Mapping[str, object]) -> Rendered:
        """Fill in the placeholders and mark the message as a drill.

        :param fields: a value for every name in :attr:`placeholders`; others are ignored.
        :returns: the subject and body.
        :raises TemplateError: when a placeholder has no value (or ``None``).
        """
        missing = [name for name in self.placeholders if fields.get(name) is None]
        if missing:
            listed = ", ".join("{" + name + "}" for name in missing)
            raise TemplateError(
                f"{self.source}: no value for {listed} when rendering the {self.name} "
                f"template; give a value for each, or remove the placeholder from {self.source}"
            )
        text = self.text.format_map({name: str(fields[name]) for name in self.placeholders})
        subject, body = _split_subject(text)
        return Rendered(subject=f"{DRILL_MARKER} {subject}", body=f"{_DRILL_NOTICE}\n\n{body}")


def default_template_dir() -> Traversable:
    """The templates shipped inside the package.

    .. versionadded:: 0.3

    :returns: the package's ``notify/templates`` directory.
    """
    return resources.files(__package__ or "pytest_drdrill.notify") / "templates"


def load_templates(directory: Path | str | None = None) -> Mapping[TemplateName, Template]:
    """Read and check the three templates of a directory.

    .. versionadded:: 0.3

    :param directory: holds ``internal_alert.txt``, ``customer_notification.txt`` and
        ``recovery_announcement.txt``; ``None`` for the package's defaults.
    :returns: each template by name, in :data:`TEMPLATE_NAMES` order.
    :raises TemplateError: when the directory or a file is missing, or a template uses a
        placeholder it cannot have, naming the file, the line and the placeholder.
    """
    root: Traversable = default_template_dir() if directory is None else Path(directory)
    if not root.is_dir():
        raise TemplateError(
            f"template directory {root} does not exist or is not a directory; {_TEMPLATE_DIR_HINT}"
        )
    loaded: dict[TemplateName, Template] = {}
    for name in TEMPLATE_NAMES:
        file = root / f"{name}.txt"
        if not file.is_file():
            raise TemplateError(
                f"template directory {root} has no {name}.txt; a template directory needs "
                f"{', '.join(n + '.txt' for n in TEMPLATE_NAMES)}: add the file, or "
                f"{_TEMPLATE_DIR_HINT}"
            )
        source = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(
                f"cannot read template {source}: {exc}; it must be a readable UTF-8 text file"
            ) from exc
        loaded[name] = parse_template(name, text, source=source)
    return loaded


def parse_template(name: TemplateName, text: str, *, source: str) -> Template:
    """Check one template's placeholders against what *name* may use.

    .. versionadded:: 0.3

    :param name: which template the text is.
    :param text: the template text.
    :param source: where the text came from, for error messages.
    :returns: the checked template.
    :raises TemplateError: on a malformed brace or a placeholder the template cannot have.
    """
    allowed = FIELDS[name]
    found: list[str] = []
    formatter = string.Formatter()
    # Line by line, so an error can name its line; a placeholder never spans lines.
    for lineno, line in enumerate(text.splitlines(), start=1):
        where = f"{source}, line {lineno}"
        try:
            parts = list(formatter.parse(line))
        except ValueError as exc:
            raise TemplateError(
                f"{where}: {exc} in the {name} template; write a literal brace as '{{{{' or "
                "'}}' and a placeholder as a name in braces, e.g. {incident_id}"
            ) from exc
        for _literal, field, spec, _conversion in parts:
            if field is None:
                continue
            _check_field(name, field, spec or "", allowed, where)
            if field not in found:
                found.append(field)
    return Template(name=name, source=source, text=text, placeholders=tuple(found))


def _check_field(
    name: TemplateName, field: str, spec: str, allowed: frozenset[str], where: str
) -> None:
    if not field.isidentifier():
        raise TemplateError(
            f"{where}: placeholder {{{field}}} in the {name} template is not a plain name; "
            f"use one of {_listed(allowed)}, or write a literal brace as '{{{{' or '}}}}'"
        )
    if "{" in spec:
        raise TemplateError(
            f"{where}: placeholder {{{field}:{spec}}} in the {name} template nests another "
            f"placeholder in its format; write it as {{{field}}}"
        )
    if field in allowed:
        return
    if field in RECOVERY_FIELDS:
        raise TemplateError(
            f"{where}: placeholder {{{field}}} in the {name} template is only known once "
            f"recovery is measured, after this message is sent; use it in "
            f"recovery_announcement.txt only, or use one of {_listed(allowed)}"
        )
    close = difflib.get_close_matches(field, sorted(allowed), n=1)
    guess = f" (did you mean {{{close[0]}}}?)" if close else ""
    raise TemplateError(
        f"{where}: unknown placeholder {{{field}}} in the {name} template{guess}; "
        f"the {name} template can use {_listed(allowed)}. Fix the name in the file, or "
        "write a literal brace as '{{' or '}}'"
    )


def _listed(names: frozenset[str]) -> str:
    return ", ".join("{" + n + "}" for n in sorted(names))


def _split_subject(text: str) -> tuple[str, str]:
    lines = text.strip("\n").splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return "(no subject)", ""
    head = lines[first].strip()
    if head.lower().startswith("subject:"):
        body = "\n".join(lines[first + 1 :]).strip("\n")
        return head[len("subject:") :].strip(), body
    return head, "\n".join(lines[first:])
