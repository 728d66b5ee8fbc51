"""Encrypted backup storage: keys, the AES-256-GCM stream format, manifests, the catalog.

Names are imported lazily, so that ``python -m pytest_drdrill.backup.keys`` runs cleanly
and importing the package does not load ``cryptography`` or ``boto3`` until needed.

.. versionadded:: 0.3
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "BackupError": "errors",
    "CorruptBackup": "errors",
    "InvalidKey": "errors",
    "InvalidManifest": "errors",
    "KeyNotConfigured": "errors",
    "MissingObject": "errors",
    "MissingWalSegment": "errors",
    "NoSuchBackup": "errors",
    "UnknownKey": "errors",
    "WrongKey": "errors",
    "BackupKey": "keys",
    "KeyRing": "keys",
    "generate_key": "keys",
    "load_key": "keys",
    "load_keyring": "keys",
    "StreamInfo": "stream",
    "decrypt_stream": "stream",
    "decrypt_to_path": "stream",
    "encrypt_stream": "stream",
    "verify_stream": "stream",
    "BackupFile": "manifest",
    "Manifest": "manifest",
    "Catalog": "catalog",
    "VerifyReport": "catalog",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
