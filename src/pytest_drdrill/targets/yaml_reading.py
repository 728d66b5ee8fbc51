"""Reading a targets file's YAML strictly, with errors that point at the line to fix.

PyYAML's safe loader keeps the last of two equal keys without a word and reports syntax
errors in its own terms; this module refuses duplicate keys and turns every read or
syntax error into an :class:`~pytest_drdrill.errors.InvalidTargets` naming the file and
the position. Checking what the document says is the loader's job, not this module's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pytest_drdrill.errors import InvalidTargets

__all__ = ["UniqueKeyLoader", "parse_yaml"]


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping.

    Plain PyYAML keeps the last of two equal keys without a word, so a second
    ``tier_1_critical:`` block pasted further down would silently replace the first.
    """


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[object, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:
            continue  # an unhashable key; construct_mapping reports it below
        if first is not None:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found the key {key!r} a second time (first on line {first.start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=True)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


def parse_yaml(path: Path) -> object:
    """Read a targets file's YAML, refusing a key given twice in one mapping.

    :param path: the targets file.
    :returns: the parsed document, not yet checked.
    :raises InvalidTargets: when the file cannot be read or is not valid YAML; the message
        names the file, the line and column, and how to fix it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidTargets(
            f"cannot read the targets file {path}: {exc}\n"
            "Hint: pass an existing UTF-8 YAML file with --drill-targets or the "
            "drill_targets ini key, or leave both unset to use the default targets"
        ) from exc
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = (
            f"line {mark.line + 1}, column {mark.column + 1}"
            if mark is not None
            else "(position unknown)"
        )
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        context_mark = getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            # PyYAML often finds the problem a line after its cause (an unclosed
            # bracket is noticed at the next key), so point at both.
            problem += (
                f" ({context} started at line {context_mark.line + 1}, "
                f"column {context_mark.column + 1})"
            )
        raise InvalidTargets(
            f"invalid targets file {path}: YAML error at {where}: {problem}\n"
            "Hint: fix the YAML near that line (indent with spaces, quote text that "
            "contains ': ' or starts with a special character, give each key once)"
        ) from exc
