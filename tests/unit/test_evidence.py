"""Tests for evidence metadata: configuration hash, SHA256SUMS and package versions."""

from __future__ import annotations

import enum
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_drdrill.reporting.evidence import (
    CHECKSUMS_FILENAME,
    config_hash,
    package_versions,
    write_checksums,
)

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ROOT / "fixtures" / "targets.yaml"
RUN = ROOT / "tests" / "data" / "history" / "20261122T161038Z-e52525.json"
OPTIONS = {"drill": "monthly", "drill_backend": "local", "drill_health_interval": 0.1}

needs_sha256sum = pytest.mark.skipif(
    shutil.which("sha256sum") is None, reason="needs coreutils' sha256sum"
)


class Backend(enum.Enum):
    LOCAL = "local"


@pytest.fixture
def config_files(tmp_path: Path) -> list[Path]:
    """The shipped targets file and a second small file, copied to a scratch directory."""
    first = tmp_path / "a" / "targets.yaml"
    first.parent.mkdir()
    shutil.copyfile(TARGETS, first)
    second = tmp_path / "a" / "tiers.ini"
    second.write_text("[drill]\nbackend = local\n")
    return [first, second]


def test_config_hash_is_stable_and_path_independent(
    tmp_path: Path, config_files: list[Path]
) -> None:
    """The same names, contents and options hash alike, wherever and in whatever order."""
    digest = config_hash(config_files, OPTIONS)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert config_hash(config_files, dict(OPTIONS)) == digest
    elsewhere = tmp_path / "b"
    elsewhere.mkdir()
    moved = [Path(shutil.copy(path, elsewhere)) for path in config_files]
    assert config_hash(list(reversed(moved)), dict(reversed(OPTIONS.items()))) == digest


def test_config_hash_changes_with_any_input(config_files: list[Path]) -> None:
    """A changed byte, file name, option value or option name changes the hash."""
    digest = config_hash(config_files, OPTIONS)
    assert config_hash(config_files, {**OPTIONS, "drill": "weekly"}) != digest
    assert config_hash(config_files, {**OPTIONS, "drill_extra": None}) != digest
    assert config_hash(config_files[:1], OPTIONS) != digest
    data = bytearray(config_files[0].read_bytes())
    data[len(data) // 2] ^= 1
    config_files[0].write_bytes(bytes(data))
    changed = config_hash(config_files, OPTIONS)
    assert changed != digest
    renamed = config_files[1].rename(config_files[1].with_name("tiers.cfg"))
    assert config_hash([config_files[0], renamed], OPTIONS) != changed


def test_config_hash_accepts_paths_enums_and_sets(config_files: list[Path]) -> None:
    """Paths, enums and sets have a canonical form; set order does not matter."""
    first = config_hash(
        config_files, {"dir": Path("reports"), "backend": Backend.LOCAL, "tags": {"b", "a"}}
    )
    second = config_hash(
        config_files, {"dir": "reports", "backend": "local", "tags": frozenset(["a", "b"])}
    )
    assert first == second


def test_config_hash_refuses_values_without_canonical_form(config_files: list[Path]) -> None:
    """An option value JSON cannot represent canonically is refused, naming its type."""
    with pytest.raises(TypeError, match="type object has no canonical JSON form"):
        config_hash(config_files, {"clock": object()})


def test_config_hash_missing_file_names_it(tmp_path: Path) -> None:
    """A configuration file that does not exist fails with a note naming it."""
    missing = tmp_path / "targets.yaml"
    with pytest.raises(FileNotFoundError) as info:
        config_hash([missing], OPTIONS)
    assert any(str(missing) in note for note in info.value.__notes__)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A report directory holding a real drill.json and a file in a subdirectory."""
    directory = tmp_path / "20261122T161038Z-e52525"
    (directory / "plots").mkdir(parents=True)
    shutil.copyfile(RUN, directory / "drill.json")
    (directory / "plots" / "rto.svg").write_text("<svg/>\n")
    return directory


@needs_sha256sum
def test_checksums_match_sha256sum_and_verify(run_dir: Path) -> None:
    """SHA256SUMS holds what sha256sum prints, and ``sha256sum -c`` accepts it."""
    names = ["drill.json", "plots/rto.svg"]
    path = write_checksums(run_dir, names)
    assert path == run_dir / CHECKSUMS_FILENAME
    printed = subprocess.run(
        ["sha256sum", *names], cwd=run_dir, capture_output=True, text=True, check=True
    ).stdout
    assert path.read_text("utf-8") == printed
    check = subprocess.run(
        ["sha256sum", "-c", CHECKSUMS_FILENAME], cwd=run_dir, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


@needs_sha256sum
def test_checksums_catch_a_changed_byte(run_dir: Path) -> None:
    """After one byte of a listed file changes, ``sha256sum -c`` fails on that file."""
    write_checksums(run_dir, ["drill.json", "plots/rto.svg"])
    report = run_dir / "drill.json"
    data = bytearray(report.read_bytes())
    data[100] ^= 0x20
    report.write_bytes(bytes(data))
    check = subprocess.run(
        ["sha256sum", "-c", CHECKSUMS_FILENAME], cwd=run_dir, capture_output=True, text=True
    )
    assert check.returncode != 0
    assert "drill.json: FAILED" in check.stdout
    assert "plots/rto.svg: OK" in check.stdout


def test_checksums_replace_earlier_list(run_dir: Path) -> None:
    """Writing the list again replaces it rather than appending to it."""
    write_checksums(run_dir, ["drill.json", "plots/rto.svg"])
    path = write_checksums(run_dir, ["drill.json"])
    lines = path.read_text("utf-8").splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("  drill.json")
    assert not list(run_dir.glob(".SHA256SUMS.*"))


@pytest.mark.parametrize("name", ["../drill.json", "/etc/hostname", "", "bad\nname", "a\\b"])
def test_checksums_refuse_names_sha256sum_cannot_check(run_dir: Path, name: str) -> None:
    """Names outside the directory or needing escapes are refused before anything is written."""
    with pytest.raises(ValueError, match="write_checksums"):
        write_checksums(run_dir, ["drill.json", name])
    assert not (run_dir / CHECKSUMS_FILENAME).exists()


def test_package_versions_reads_installed_metadata() -> None:
    """Installed distributions report their version; missing ones say so."""
    missing = "pytest-drdrill-no-such-distribution"
    versions = package_versions(["pytest", missing])
    assert versions == {"pytest": pytest.__version__, missing: "not installed"}
