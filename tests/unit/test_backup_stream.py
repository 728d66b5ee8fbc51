"""The encrypted stream format: round trips, tamper detection, keys, bounded memory."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_drdrill.backup.errors import BackupError, CorruptBackup, UnknownKey, WrongKey
from pytest_drdrill.backup.keys import KeyRing, generate_key
from pytest_drdrill.backup.manifest import BackupFile
from pytest_drdrill.backup.stream import (
    HEADER_SIZE,
    TAG_SIZE,
    EncryptingReader,
    decrypt_stream,
    decrypt_to_path,
    encrypt_stream,
    stored_size,
    verify_stream,
)

KEY = generate_key()
OTHER = generate_key()
CHUNK = 64


def seal(data: bytes, chunk_size: int = CHUNK, context: bytes = b"") -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, KEY, chunk_size=chunk_size, context=context)
    return out.getvalue()


def open_(stored: bytes, keys=KEY, context: bytes = b"") -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(stored), out, keys, object_name="obj", context=context)
    return out.getvalue()


def chunks_of(stored: bytes, chunk_size: int = CHUNK) -> tuple[bytes, list[bytes]]:
    body = stored[HEADER_SIZE:]
    step = chunk_size + TAG_SIZE
    return stored[:HEADER_SIZE], [body[i : i + step] for i in range(0, len(body), step)]


SAMPLE = os.urandom(5 * CHUNK + 7)
SEALED = seal(SAMPLE)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 3])
def test_round_trip(size):
    """Every size around chunk boundaries decrypts to the same bytes with matching info."""
    data = os.urandom(size)
    out = io.BytesIO()
    info = encrypt_stream(io.BytesIO(data), out, KEY, chunk_size=CHUNK)
    assert len(out.getvalue()) == info.stored_bytes == stored_size(size, CHUNK)
    assert info.plain_bytes == size and info.key_id == KEY.key_id
    plain = io.BytesIO()
    back = decrypt_stream(io.BytesIO(out.getvalue()), plain, KEY)
    assert plain.getvalue() == data
    assert back == info
    assert verify_stream(io.BytesIO(out.getvalue()), KeyRing.of([OTHER, KEY])) == info


def test_default_chunk_size_round_trip():
    """A stream of a few 1 MiB chunks round-trips and its ciphertext differs each time."""
    data = os.urandom((3 << 20) + 11)
    first, second = io.BytesIO(), io.BytesIO()
    encrypt_stream(io.BytesIO(data), first, KEY)
    encrypt_stream(io.BytesIO(data), second, KEY)
    assert first.getvalue() != second.getvalue()  # fresh salt per stream
    assert open_(first.getvalue()) == data


def test_encrypting_reader_matches_encrypt_stream_format():
    """Reading an EncryptingReader in odd sizes yields a stream that decrypts."""
    reader = EncryptingReader(io.BytesIO(SAMPLE), KEY, chunk_size=CHUNK)
    parts = []
    while part := reader.read(37):
        parts.append(part)
    stored = b"".join(parts)
    assert reader.info is not None and reader.info.stored_bytes == len(stored)
    assert open_(stored) == SAMPLE


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(0, len(SEALED) * 8 - 1))
def test_any_flipped_bit_is_refused(position):
    """A single flipped bit anywhere, header included, is reported as corruption."""
    damaged = bytearray(SEALED)
    damaged[position // 8] ^= 1 << (position % 8)
    with pytest.raises(CorruptBackup) as info:
        open_(bytes(damaged))
    assert "obj" in str(info.value)


@settings(max_examples=200, deadline=None)
@given(length=st.integers(0, len(SEALED) - 1))
def test_any_truncation_is_refused(length):
    """A stream cut at any length is refused, and names the object."""
    with pytest.raises(CorruptBackup, match="obj"):
        open_(SEALED[:length])


@settings(max_examples=100, deadline=None)
@given(extra=st.binary(min_size=1, max_size=200))
def test_appended_bytes_are_refused(extra):
    """Bytes after the final chunk are refused."""
    with pytest.raises(CorruptBackup):
        open_(SEALED + extra)


def test_reordered_chunks_are_refused():
    """Swapping two chunks fails at the first moved chunk."""
    header, chunks = chunks_of(SEALED)
    chunks[1], chunks[2] = chunks[2], chunks[1]
    with pytest.raises(CorruptBackup) as info:
        open_(header + b"".join(chunks))
    assert info.value.chunk_index == 1


def test_duplicated_chunk_is_refused():
    """A chunk repeated in place of the next one is refused."""
    header, chunks = chunks_of(SEALED)
    chunks.insert(2, chunks[1])
    with pytest.raises(CorruptBackup) as info:
        open_(header + b"".join(chunks))
    assert info.value.chunk_index == 2


def test_dropped_final_chunk_is_refused():
    """Dropping the final chunk (a cut at a chunk boundary) is reported as truncation."""
    header, chunks = chunks_of(SEALED)
    with pytest.raises(CorruptBackup, match="without its final chunk"):
        open_(header + b"".join(chunks[:-1]))


def test_dropped_empty_final_chunk_is_refused():
    """A plaintext of whole chunks still needs its empty final chunk."""
    stored = seal(os.urandom(2 * CHUNK))
    assert len(stored) == stored_size(2 * CHUNK, CHUNK)
    with pytest.raises(CorruptBackup, match="truncated"):
        open_(stored[:-TAG_SIZE])


def test_chunk_from_another_stream_is_refused():
    """A chunk spliced in from another stream under the same key fails authentication."""
    header, chunks = chunks_of(SEALED)
    _, foreign = chunks_of(seal(SAMPLE))
    chunks[2] = foreign[2]
    with pytest.raises(CorruptBackup):
        open_(header + b"".join(chunks))


def test_context_is_bound():
    """A stream bound to one context does not decrypt under another."""
    stored = seal(SAMPLE, context=b"b1/base.tar")
    assert open_(stored, context=b"b1/base.tar") == SAMPLE
    with pytest.raises(CorruptBackup, match="chunk 0"):
        open_(stored, context=b"b1/other.tar")


def test_wrong_key():
    """One key that is not the stream's key gives WrongKey naming the needed id."""
    with pytest.raises(WrongKey) as info:
        open_(SEALED, keys=OTHER)
    assert info.value.key_id == KEY.key_id
    assert KEY.key_id in str(info.value) and "obj" in str(info.value)
    assert isinstance(info.value, BackupError | ValueError)


def test_unknown_key_lists_known_ids():
    """A key ring without the stream's key gives UnknownKey listing the ring's ids."""
    third = generate_key()
    with pytest.raises(UnknownKey) as info:
        open_(SEALED, keys=KeyRing.of([OTHER, third]))
    assert info.value.known_ids == (OTHER.key_id, third.key_id)
    assert OTHER.key_id in str(info.value) and KEY.key_id in str(info.value)
    assert isinstance(info.value, LookupError)


def test_not_a_stream():
    """Plain data is refused as not being an encrypted stream."""
    with pytest.raises(CorruptBackup, match="magic"):
        open_(b"PGDMP" + os.urandom(100))
    with pytest.raises(CorruptBackup, match="empty"):
        open_(b"")


def test_short_reads_are_not_mistaken_for_the_end():
    """A source that returns a few bytes per read (a socket) still round-trips."""

    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, size=-1):
            return self.inner.read(min(size, 5) if size and size > 0 else 5)

    stored = io.BytesIO()
    encrypt_stream(Trickle(SAMPLE), stored, KEY, chunk_size=CHUNK)
    assert stored.getvalue().__len__() == stored_size(len(SAMPLE), CHUNK)
    plain = io.BytesIO()
    decrypt_stream(Trickle(stored.getvalue()), plain, KEY)
    assert plain.getvalue() == SAMPLE


def test_decrypt_to_path_success(tmp_path: Path):
    """A verified stream replaces the target and leaves no temporary file."""
    target = tmp_path / "restored"
    target.write_bytes(b"old")
    info = decrypt_to_path(io.BytesIO(SEALED), target, KEY)
    assert target.read_bytes() == SAMPLE and info.plain_bytes == len(SAMPLE)
    assert os.listdir(tmp_path) == ["restored"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s[:-1],
        lambda s: s[: HEADER_SIZE + CHUNK + TAG_SIZE],
        lambda s: s[:-5] + bytes([s[-5] ^ 0x40]) + s[-4:],
    ],
    ids=["cut", "cut-at-boundary", "flipped-last-chunk"],
)
def test_decrypt_to_path_leaves_target_untouched(tmp_path: Path, damage):
    """On failure, even late in the stream, the target keeps its old content and no temp stays."""
    target = tmp_path / "restored"
    target.write_bytes(b"old")
    with pytest.raises(CorruptBackup):
        decrypt_to_path(io.BytesIO(damage(SEALED)), target, KEY)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["restored"]


def test_decrypt_to_path_checks_the_manifest_record(tmp_path: Path):
    """A valid stream whose digest differs from the manifest's record is refused."""
    info = verify_stream(io.BytesIO(SEALED), KEY)
    record = BackupFile("f", info.plain_bytes, "0" * 64, info.stored_bytes, info.stored_sha256)
    with pytest.raises(CorruptBackup, match="sha256"):
        decrypt_to_path(io.BytesIO(SEALED), tmp_path / "f", KEY, expect=record)
    assert os.listdir(tmp_path) == []


def test_decrypt_to_path_wrong_key_creates_nothing(tmp_path: Path):
    """A wrong key is reported before any file appears."""
    with pytest.raises(WrongKey):
        decrypt_to_path(io.BytesIO(SEALED), tmp_path / "f", OTHER)
    assert os.listdir(tmp_path) == []


class Generated(io.RawIOBase):
    """A reader of ``size`` pseudo-random bytes that never holds more than one block."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = os.urandom(1 << 16)

    def readable(self) -> bool:
        return True

    def read(self, size=-1):
        take = min(self.left, size if size and size > 0 else 1 << 16)
        self.left -= take
        reps, rest = divmod(take, len(self.block))
        return self.block * reps + self.block[:rest]


class Sink:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def test_memory_is_bounded_by_a_few_chunks():
    """Encrypting and verifying 64 MiB keeps the traced peak under four 1 MiB chunks."""
    size, chunk = 64 << 20, 1 << 20
    tracemalloc.start()
    try:
        sink = Sink()
        info = encrypt_stream(Generated(size), sink, KEY, chunk_size=chunk)
        _, encrypt_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.plain_bytes == size and sink.size == stored_size(size, chunk)
    assert encrypt_peak < 4 * chunk, f"peak {encrypt_peak} bytes"


def test_restore_against_a_manifest_skips_only_the_stored_digest(tmp_path: Path):
    """With a manifest record the stored digest is not computed; the plaintext one is."""
    info = verify_stream(io.BytesIO(SEALED), KEY)
    record = BackupFile("f", info.plain_bytes, info.plain_sha256, info.stored_bytes, "0" * 64)
    restored = decrypt_to_path(io.BytesIO(SEALED), tmp_path / "f", KEY, expect=record)
    assert restored.stored_sha256 is None
    assert restored.plain_sha256 == info.plain_sha256
    assert restored.stored_bytes == info.stored_bytes
