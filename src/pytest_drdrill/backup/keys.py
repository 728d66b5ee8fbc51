"""Backup encryption keys: loading, key ids, key rings for rotation, and a generator.

Key material is **standard base64** (RFC 4648 section 4, with ``=`` padding) of exactly
32 random bytes, the AES-256 key. It comes from the ``DRDRILL_BACKUP_KEY`` environment
variable or from a key file (``--drill-backup-key-file`` / ``drill_backup_key_file``).
Either may hold several keys, one per line (the variable may also separate them with
commas): the first encrypts new backups, the others only decrypt older ones, which is
how keys rotate.

The key id is the first 16 hex characters of SHA-256 over a domain-separating prefix and
the key. It is stable, not secret, and recorded in every stream header and manifest, so a
restore picks the right key from the ring. A :class:`BackupKey` checks that its id
matches its bytes: a key ring lookup by id therefore always yields the key that wrote a
stream.

A key file must not be readable or writable by group or others: it is refused (not just
warned about), as ssh refuses such private keys, because a warning scrolls by unseen in
CI logs while the key stays exposed. ``chmod 600`` fixes it.

Create a key with ``python -m pytest_drdrill.backup.keys generate > backup.key``: when
standard output is a regular file, its mode is set to 0600. ``... keys id`` prints the
ids of the configured keys.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import hashlib
import os
import re
import secrets
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pytest_drdrill.backup.errors import InvalidKey, KeyNotConfigured

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

#: The environment variable keys are read from by default.
KEY_ENV = "DRDRILL_BACKUP_KEY"
KEY_SIZE = 32
_ID_PREFIX = b"pytest-drdrill backup key id v1\x00"
_ID_RE = re.compile(r"[0-9a-f]{16}")
_HOW_TO_CONFIGURE = (
    "Set the {env} environment variable to a base64 key, or point --drill-backup-key-file "
    "(ini: drill_backup_key_file) at a key file; create a key with "
    "'python -m pytest_drdrill.backup.keys generate > backup.key'."
)


def key_id_of(secret: bytes) -> str:
    """Return the key id of raw key bytes: 16 hex characters, safe to log.

    :param secret: the 32 key bytes.
    :returns: the key id.

    .. versionadded:: 0.3
    """
    return hashlib.sha256(_ID_PREFIX + secret).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class BackupKey:
    """One AES-256 backup key; its ``repr`` and ``str`` show only the key id.

    :param key_id: :func:`key_id_of` the secret; checked.
    :param secret: the 32 key bytes.
    :raises InvalidKey: when the secret is not 32 bytes or the id does not match it.

    .. versionadded:: 0.3
    """

    key_id: str
    secret: bytes = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) != KEY_SIZE:
            size = len(self.secret) if isinstance(self.secret, bytes | bytearray) else "no"
            raise InvalidKey(f"a backup key must be {KEY_SIZE} bytes, not {size} bytes")
        if self.key_id != key_id_of(self.secret):
            raise InvalidKey(
                f"key id {self.key_id!r} does not belong to this key; build keys with "
                f"BackupKey.from_secret() or load_key()"
            )

    def __repr__(self) -> str:
        return f"BackupKey(key_id={self.key_id!r})"

    __str__ = __repr__

    @classmethod
    def from_secret(cls, secret: bytes) -> BackupKey:
        """Build a key from its 32 raw bytes, deriving its id.

        :param secret: the key bytes.
        :raises InvalidKey: when it is not 32 bytes.
        """
        secret = bytes(secret)
        if len(secret) != KEY_SIZE:
            raise InvalidKey(f"a backup key must be {KEY_SIZE} bytes, not {len(secret)} bytes")
        return cls(key_id_of(secret), secret)

    def derive(self, info: bytes, *, salt: bytes | None = None, length: int = KEY_SIZE) -> bytes:
        """Derive a subkey with HKDF-SHA256, so no two purposes share key bytes.

        :param info: names the purpose (and format version).
        :param salt: per-use randomness (a stream's salt), or none.
        :param length: bytes wanted.
        :returns: the derived bytes.
        """
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(
            self.secret
        )


def generate_key() -> BackupKey:
    """Return a new random key.

    .. versionadded:: 0.3
    """
    return BackupKey.from_secret(secrets.token_bytes(KEY_SIZE))


def encode_key(key: BackupKey) -> str:
    """Return a key's material as the base64 text that :func:`load_key` reads.

    :param key: the key.
    :returns: base64 text without a newline. It is the secret: never log it.

    .. versionadded:: 0.3
    """
    return base64.b64encode(key.secret).decode("ascii")


@dataclasses.dataclass(frozen=True)
class KeyRing:
    """Several keys by id: the first encrypts, all of them decrypt (key rotation).

    :param keys: the keys, current one first; at least one, ids unique.
    :raises ValueError: when empty or when a key appears twice.

    .. versionadded:: 0.3
    """

    keys: tuple[BackupKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise InvalidKey("a key ring needs at least one key")
        if len({key.key_id for key in self.keys}) != len(self.keys):
            raise InvalidKey(f"a key ring holds each key once; ids: {', '.join(self.ids)}")

    @classmethod
    def of(cls, keys: KeyRing | BackupKey | Iterable[BackupKey]) -> KeyRing:
        """Return ``keys`` as a key ring.

        :param keys: a ring, one key, or keys (current first).
        """
        if isinstance(keys, KeyRing):
            return keys
        if isinstance(keys, BackupKey):
            return cls((keys,))
        return cls(tuple(keys))

    @property
    def current(self) -> BackupKey:
        """The key new backups are encrypted with."""
        return self.keys[0]

    @property
    def ids(self) -> tuple[str, ...]:
        """The key ids held, current first."""
        return tuple(key.key_id for key in self.keys)

    def get(self, key_id: str) -> BackupKey | None:
        """Return the key with this id, or ``None``.

        :param key_id: a key id from a stream header or manifest.
        """
        for key in self.keys:
            if key.key_id == key_id:
                return key
        return None

    def __contains__(self, key_id: object) -> bool:
        return any(key.key_id == key_id for key in self.keys)

    def __iter__(self) -> Iterator[BackupKey]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def parse_keys(text: str, *, source: str) -> KeyRing:
    """Parse base64 keys separated by newlines, commas or spaces into a key ring.

    :param text: the material.
    :param source: where it came from, for messages (never the material itself).
    :returns: the keys, first one current.
    :raises InvalidKey: when a key is not base64 of 32 bytes, or none is present.

    .. versionadded:: 0.3
    """
    items = [item for item in re.split(r"[\s,]+", text) if item]
    if not items:
        raise InvalidKey(f"{source} holds no key. {_HOW_TO_CONFIGURE.format(env=KEY_ENV)}")
    keys = []
    for number, item in enumerate(items, start=1):
        which = f"key {number} of {source}" if len(items) > 1 else source
        # Errors give the length only: a near-miss value is usually a real key.
        try:
            raw = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidKey(
                f"{which} is not standard base64 ({len(item)} characters). Backup keys are "
                f"base64 of {KEY_SIZE} random bytes; create one with "
                f"'python -m pytest_drdrill.backup.keys generate'."
            ) from None
        if len(raw) != KEY_SIZE:
            raise InvalidKey(
                f"{which} decodes to {len(raw)} bytes; an AES-256 backup key is {KEY_SIZE} "
                f"bytes (44 base64 characters). Create one with "
                f"'python -m pytest_drdrill.backup.keys generate'."
            )
        keys.append(BackupKey.from_secret(raw))
    if len({key.key_id for key in keys}) != len(keys):
        raise InvalidKey(f"{source} lists the same key twice; remove the duplicate line")
    return KeyRing(tuple(keys))


def _read_key_file(path: Path) -> str:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyNotConfigured(
            f"backup key file {path} does not exist. Fix --drill-backup-key-file / "
            f"drill_backup_key_file, or create it with "
            f"'python -m pytest_drdrill.backup.keys generate > {path}'."
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidKey(f"backup key file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise InvalidKey(
            f"backup key file {path} has mode {stat.S_IMODE(info.st_mode):04o}: group or "
            f"others may access it, so it is refused. Run 'chmod 600 {path}' (for a "
            f"Kubernetes secret volume, set defaultMode: 0400), or pass the key in {KEY_ENV}."
        )
    try:
        return path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise InvalidKey(
            f"backup key file {path} is not ASCII text; it must hold base64 keys, one per line"
        ) from None


def load_keyring(*, env: str = KEY_ENV, key_file: Path | None = None) -> KeyRing:
    """Load every configured key: from ``key_file`` when given, else from ``env``.

    An explicit key file wins over the environment, as a command-line flag wins over
    defaults elsewhere in pytest-drdrill.

    :param env: the environment variable to read.
    :param key_file: a key file (the ``--drill-backup-key-file`` value), or ``None``.
    :returns: the keys, the current (encrypting) one first.
    :raises KeyNotConfigured: when neither source holds a key.
    :raises InvalidKey: on malformed material or an unsafe key file.

    .. versionadded:: 0.3
    """
    if key_file is not None:
        path = Path(key_file)
        return parse_keys(_read_key_file(path), source=f"backup key file {path}")
    value = os.environ.get(env, "")
    if not value.strip():
        raise KeyNotConfigured(
            f"no backup key: the {env} environment variable is "
            f"{'empty' if env in os.environ else 'not set'} and no key file was given. "
            + _HOW_TO_CONFIGURE.format(env=env)
        )
    return parse_keys(value, source=f"the {env} environment variable")


def drill_keyring(key_file: Path | None = None) -> tuple[KeyRing, bool]:
    """The keys a drill run encrypts with, and whether they are a throwaway made for it.

    A key file or ``DRDRILL_BACKUP_KEY`` that is set but unusable is an error; with
    neither, a drill run makes a throwaway key, so the main job works on a fresh machine,
    and its backups can only be restored within the run (which is all a drill needs).

    :param key_file: the ``--drill-backup-key-file`` value, or ``None``.
    :raises InvalidKey: on malformed material or an unsafe key file.

    .. versionadded:: 0.4
    """
    try:
        return load_keyring(key_file=key_file), False
    except KeyNotConfigured:
        return KeyRing.of(generate_key()), True


def load_key(*, env: str = KEY_ENV, key_file: Path | None = None) -> BackupKey:
    """Load the current backup key (the first configured one).

    :param env: the environment variable to read.
    :param key_file: a key file (the ``--drill-backup-key-file`` value), or ``None``.
    :returns: the key new backups are encrypted with.
    :raises KeyNotConfigured: when neither source holds a key.
    :raises InvalidKey: on malformed material or an unsafe key file.

    .. versionadded:: 0.3
    """
    return load_keyring(env=env, key_file=key_file).current


def _restrict_stdout() -> None:
    """Make a shell-redirected key file private before the key is written to it."""
    try:
        fd = sys.stdout.fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)
    except (OSError, ValueError, AttributeError):
        pass  # a pipe or a captured stream: there is no file to protect


def main(argv: Sequence[str] | None = None) -> int:
    """Run the key command line: ``generate`` a key, or print the ``id`` of configured keys.

    :param argv: arguments without the program name; ``sys.argv[1:]`` by default.
    :returns: the exit status.

    .. versionadded:: 0.3
    """
    parser = argparse.ArgumentParser(
        prog="python -m pytest_drdrill.backup.keys", description="pytest-drdrill backup keys"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="print a new base64 key")
    generate.add_argument("--out", type=Path, help="create this file (mode 0600) instead")
    show = commands.add_parser("id", help="print the ids of the configured keys")
    show.add_argument("--key-file", type=Path, help="read keys from this file")
    show.add_argument("--env", default=KEY_ENV, help=f"variable to read (default {KEY_ENV})")
    args = parser.parse_args(argv)
    if args.command == "generate":
        text = encode_key(generate_key()) + "\n"
        if args.out is not None:
            fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(text)
        else:
            _restrict_stdout()
            sys.stdout.write(text)
        return 0
    try:
        ring = load_keyring(env=args.env, key_file=args.key_file)
    except (KeyNotConfigured, InvalidKey) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key_id in ring.ids:
        print(key_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
