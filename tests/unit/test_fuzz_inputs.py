"""Every file a user hands the plugin, mutated at random: a usage error or a valid load.

The shipped targets, stack file, Chaos Toolkit experiment, Patroni settings and
communication templates are mutated (a key dropped, renamed or added, a value replaced by
another of any type, text spliced into a template) and loaded again. Each answer must be
either a clean load or one of the plugin's own errors naming the file; a traceback from a
``KeyError``, ``TypeError`` or ``AttributeError`` deep in a loader fails the test.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_drdrill.errors import DrillError

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["5m", "-1h", "1y", "0", "tier_1_critical", "primary", "PT5M", "1e400"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into ``node`` (the root included)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        node = node[step]
    return node


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with one to three random mutations."""
    doc = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        if not path:
            if draw(st.booleans()):
                return draw(values)
            continue
        parent, key = _at(doc, path[:-1]), path[-1]
        operation = draw(st.sampled_from(["replace", "delete", "rename", "add"]))
        if operation == "replace":
            parent[key] = draw(values)
        elif operation == "delete":
            del parent[key]
        elif operation == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = parent.pop(key)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
        else:
            parent.append(draw(values))
    return doc


def _load_or_usage_error(load: Any, path: Path) -> None:
    """The load succeeds, or fails with the plugin's own error naming ``path``."""
    try:
        load(path)
    except DrillError as exc:
        assert str(path) in str(exc), f"the error does not name the file: {exc}"


def _yaml_case(tmp_path: Path, document: Any, name: str) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


TARGETS = yaml.safe_load((ROOT / "fixtures" / "targets.yaml").read_text())
STACK = yaml.safe_load((ROOT / "fixtures" / "stack-compose.yaml").read_text())
PATRONI = {
    "ttl": 20,
    "loop_wait": 2,
    "retry_timeout": 5,
    "maximum_lag_on_failover": 1048576,
    "failsafe_mode": False,
    "postgresql": {"parameters": {"max_connections": 100}},
    "tags": {"pg-dr": {"nofailover": True}},
}
EXPERIMENT = json.loads(
    (ROOT / "scenarios" / "experiments" / "experiment-primary-crash.json").read_text()
)


@FUZZ
@given(document=mutated(TARGETS))
def test_targets_file(tmp_path: Path, document: Any) -> None:
    from pytest_drdrill.targets.loader import load_targets

    _load_or_usage_error(load_targets, _yaml_case(tmp_path, document, "targets.yaml"))


@FUZZ
@given(document=mutated(STACK))
def test_stack_file(tmp_path: Path, document: Any) -> None:
    from pytest_drdrill.topology.stack_file import StackSpec

    _load_or_usage_error(StackSpec.load, _yaml_case(tmp_path, document, "stack.yaml"))


@FUZZ
@given(document=mutated(PATRONI))
def test_patroni_settings(tmp_path: Path, document: Any) -> None:
    from pytest_drdrill.topology.patroni_settings import load_settings

    _load_or_usage_error(load_settings, _yaml_case(tmp_path, document, "patroni.yml"))


@FUZZ
@given(document=mutated(EXPERIMENT))
def test_chaos_toolkit_experiment(tmp_path: Path, document: Any) -> None:
    from pytest_drdrill.chaostoolkit.experiment import load

    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(document))
    _load_or_usage_error(load, path)


SPLICES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["{", "}", "{}", "{nope}", "{0}", "{service!r}", "{a.b}", "{x[0]}", "{{", "Subject:"]
    ),
)


@FUZZ
@given(
    name=st.sampled_from(sorted(p.name for p in (ROOT / "fixtures" / "communication").iterdir())),
    at=st.floats(0, 1),
    splice=SPLICES,
)
def test_communication_templates(tmp_path: Path, name: str, at: float, splice: str) -> None:
    from pytest_drdrill.notify.templates import load_templates

    directory = tmp_path / "communication"
    shutil.rmtree(directory, ignore_errors=True)
    shutil.copytree(ROOT / "fixtures" / "communication", directory)
    text = (directory / name).read_text()
    cut = int(at * len(text))
    (directory / name).write_text(text[:cut] + splice + text[cut:])
    try:
        load_templates(directory)
    except DrillError as exc:
        assert name in str(exc), f"the error does not name the template: {exc}"


@pytest.mark.parametrize("name", ["targets.yaml", "stack.yaml", "patroni.yml"])
def test_not_yaml_at_all(tmp_path: Path, name: str) -> None:
    """Bytes that are no YAML: still a usage error naming the file."""
    from pytest_drdrill.targets.loader import load_targets
    from pytest_drdrill.topology.patroni_settings import load_settings
    from pytest_drdrill.topology.stack_file import StackSpec

    load = {
        "targets.yaml": load_targets,
        "stack.yaml": StackSpec.load,
        "patroni.yml": load_settings,
    }
    path = tmp_path / name
    path.write_bytes(b"key: [unclosed\n\t- \xff\xfe")
    with pytest.raises(DrillError, match=str(path)):
        load[name](path)
