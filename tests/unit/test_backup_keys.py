"""Backup keys: loading from the environment or a key file, errors, rotation, no leaks."""

from __future__ import annotations

import base64
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_drdrill.backup.errors import BackupError, InvalidKey, KeyNotConfigured
from pytest_drdrill.backup.keys import (
    KEY_ENV,
    BackupKey,
    KeyRing,
    encode_key,
    generate_key,
    key_id_of,
    load_key,
    load_keyring,
    main,
)
from pytest_drdrill.backup.stream import decrypt_stream, encrypt_stream


def forms_of(key: BackupKey) -> list[str]:
    """Every way the key's material could show up in text."""
    return [encode_key(key), key.secret.hex(), repr(key.secret), str(key.secret)[2:-1]]


def assert_no_material(text: str, key: BackupKey) -> None:
    for form in forms_of(key):
        assert form not in text


def key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "backup.key"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_repr_and_str_hide_the_key():
    """repr, str and the dataclass fields' repr show only the key id."""
    key = generate_key()
    for text in (repr(key), str(key), repr(KeyRing.of(key)), f"{key}"):
        assert key.key_id in text
        assert_no_material(text, key)


def test_key_id_is_stable_and_derived():
    """The id depends only on the key bytes, and a mismatched id is refused."""
    secret = bytes(range(32))
    assert BackupKey.from_secret(secret).key_id == key_id_of(secret) == key_id_of(bytes(secret))
    assert len(key_id_of(secret)) == 16
    with pytest.raises(InvalidKey, match="does not belong"):
        BackupKey("0" * 16, secret)


def test_load_from_env(monkeypatch):
    """A base64 key in the environment loads, with the expected id."""
    key = generate_key()
    monkeypatch.setenv(KEY_ENV, encode_key(key) + "\n")
    assert load_key() == key


def test_load_from_file(tmp_path, monkeypatch):
    """An explicit key file wins over the environment."""
    in_env, in_file = generate_key(), generate_key()
    monkeypatch.setenv(KEY_ENV, encode_key(in_env))
    path = key_file(tmp_path, encode_key(in_file) + "\n")
    assert load_key(key_file=path) == in_file


def test_rotation_ring(tmp_path):
    """Several keys, one per line, load as a ring whose first key is current."""
    new, old = generate_key(), generate_key()
    ring = load_keyring(key_file=key_file(tmp_path, f"{encode_key(new)}\n{encode_key(old)}\n"))
    assert ring.current == new and ring.ids == (new.key_id, old.key_id)
    stored = io.BytesIO()
    encrypt_stream(io.BytesIO(b"payload"), stored, old)
    plain = io.BytesIO()
    decrypt_stream(io.BytesIO(stored.getvalue()), plain, ring)
    assert plain.getvalue() == b"payload"


def test_missing_everywhere_names_env_and_option(monkeypatch):
    """No env var and no file: the error names the variable, the flag and the ini key."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(KeyNotConfigured) as info:
        load_key()
    message = str(info.value)
    for name in (KEY_ENV, "--drill-backup-key-file", "drill_backup_key_file", "generate"):
        assert name in message
    assert isinstance(info.value, BackupError | LookupError)


def test_missing_file(tmp_path):
    """A key file that does not exist is named with the option to fix."""
    with pytest.raises(KeyNotConfigured, match="does not exist.*--drill-backup-key-file"):
        load_key(key_file=tmp_path / "nope.key")


@pytest.mark.parametrize(
    ("material", "match"),
    [
        ("not base64 at all!", "not standard base64"),
        (base64.b64encode(os.urandom(16)).decode(), "decodes to 16 bytes"),
        (base64.b64encode(os.urandom(33)).decode(), "decodes to 33 bytes"),
        (os.urandom(32).hex(), "decodes to 48 bytes|not standard base64"),
        ("   ", "no backup key|holds no key"),
    ],
    ids=["garbage", "short", "long", "hex", "blank"],
)
def test_bad_material(monkeypatch, material, match):
    """Malformed material is refused with a message that does not echo it."""
    monkeypatch.setenv(KEY_ENV, material)
    with pytest.raises((InvalidKey, KeyNotConfigured), match=match) as info:
        load_key()
    if material.strip():
        assert material not in str(info.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_open_key_file_is_refused(tmp_path, mode):
    """A key file group or others can access is refused, with the chmod that fixes it."""
    key = generate_key()
    path = key_file(tmp_path, encode_key(key), mode)
    with pytest.raises(InvalidKey, match=f"chmod 600 {path}") as info:
        load_key(key_file=path)
    assert_no_material(str(info.value), key)


def test_duplicate_key_is_refused(tmp_path):
    """The same key listed twice is a configuration mistake."""
    text = encode_key(generate_key())
    with pytest.raises(InvalidKey, match="same key twice"):
        load_keyring(key_file=key_file(tmp_path, f"{text}\n{text}\n"))


def test_no_material_in_any_error_or_log(tmp_path, monkeypatch, caplog):
    """Errors and logs around loading and using keys never contain key material."""
    caplog.set_level(logging.DEBUG)
    key, other = generate_key(), generate_key()
    texts = []
    attempts = [
        lambda: load_key(key_file=key_file(tmp_path, encode_key(key) + "x", 0o600)),
        lambda: load_key(key_file=key_file(tmp_path, encode_key(key), 0o644)),
        lambda: BackupKey(other.key_id, key.secret),
        lambda: KeyRing((key, key)),
    ]
    stored = io.BytesIO()
    encrypt_stream(io.BytesIO(b"x" * 100), stored, key)
    attempts.append(lambda: decrypt_stream(io.BytesIO(stored.getvalue()), io.BytesIO(), other))
    for attempt in attempts:
        with pytest.raises(BackupError) as info:
            attempt()
        texts.append(str(info.value) + repr(info.value) + repr(info.value.args))
    texts.append(caplog.text)
    for text in texts:
        assert_no_material(text, key)


def test_cli_generate_to_redirected_file(tmp_path):
    """'generate > file' produces a private key file that load_key accepts."""
    path = tmp_path / "backup.key"
    with open(path, "w") as out:
        subprocess.run(
            [sys.executable, "-W", "error", "-m", "pytest_drdrill.backup.keys", "generate"],
            stdout=out,
            check=True,
        )
    assert path.stat().st_mode & 0o777 == 0o600
    key = load_key(key_file=path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest_drdrill.backup.keys", "id", "--key-file", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == key.key_id


def test_cli_out_option_and_id_error(tmp_path, capsys, monkeypatch):
    """--out creates a 0600 file; 'id' without keys exits 2 with the remedy."""
    path = tmp_path / "k"
    assert main(["generate", "--out", str(path)]) == 0
    assert path.stat().st_mode & 0o777 == 0o600
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert main(["id"]) == 2
    assert "--drill-backup-key-file" in capsys.readouterr().err
