"""The PostgreSQL template kept between sessions: published whole, reused, never trusted blindly."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_drdrill.topology import template_cache


def _built(tmp_path: Path, name: str = "built") -> Path:
    template = tmp_path / name / "template"
    template.mkdir(parents=True, mode=0o700)
    (template / "PG_VERSION").write_text("15\n")
    return template


def _install(tmp_path: Path, version: str = "15.8") -> object:
    return SimpleNamespace(bindir=tmp_path, version=version)


def test_a_published_template_is_found_and_built_only_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(template_cache, "cache_root", lambda: tmp_path / "cache")
    builds: list[Path] = []

    def build() -> Path:
        builds.append(_built(tmp_path, f"session-{len(builds)}"))
        return builds[-1]

    install = _install(tmp_path)
    first, hit = template_cache.template_for(install, None, build)  # type: ignore[arg-type]
    assert not hit and len(builds) == 1
    assert first.parent.parent == tmp_path / "cache" and (first / "PG_VERSION").is_file()
    second, hit = template_cache.template_for(install, None, build)  # type: ignore[arg-type]
    assert hit and second == first and len(builds) == 1
    # Another server build is another key: built again, kept beside the first.
    other, hit = template_cache.template_for(_install(tmp_path, "16.2"), None, build)  # type: ignore[arg-type]
    assert not hit and other != first and len(builds) == 2


def test_the_switch_builds_every_session(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(template_cache, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setenv(template_cache.SWITCH, "0")
    built = _built(tmp_path)
    got, hit = template_cache.template_for(_install(tmp_path), None, lambda: built)  # type: ignore[arg-type]
    assert (got, hit) == (built, False)
    assert not (tmp_path / "cache").exists()


def test_losing_the_race_keeps_the_winners_copy_and_leaves_no_staging(tmp_path) -> None:
    root = tmp_path / "cache"
    winner = template_cache.publish(_built(tmp_path, "a"), "k", root)
    (winner / "marker").write_text("first")  # type: ignore[operator]
    loser = template_cache.publish(_built(tmp_path, "b"), "k", root)
    assert loser == winner and (loser / "marker").read_text() == "first"  # type: ignore[operator]
    assert sorted(p.name for p in root.iterdir()) == ["k"], "no hidden staging copy left"


def test_an_incomplete_or_foreign_entry_is_not_used(tmp_path) -> None:
    root = tmp_path / "cache"
    half = root / "k" / "template"
    half.mkdir(parents=True)
    (half / "PG_VERSION").write_text("15\n")
    assert template_cache.cached("k", root) is None, "no completion mark: a copy cut short"
    (root / "k" / "complete").write_text("k")
    assert template_cache.cached("k", root) == half
    (root / "k").chmod(0o777)  # anybody could have replaced the template
    assert template_cache.cached("k", root) is None
    (root / "k").chmod(0o711)
    root.chmod(0o777)
    assert template_cache.cached("k", root) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own a directory as another user")
def test_a_cache_another_user_owns_is_not_used(tmp_path) -> None:
    root = tmp_path / "cache"
    template = template_cache.publish(_built(tmp_path), "k", root)
    assert template is not None
    os.chown(root, 65534, 65534)
    assert template_cache.cached("k", root) is None
