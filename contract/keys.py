"""TorchServe's ``key_file.json``: the one reader for every client of the inference API.

TorchServe (token authorization on) writes ``{"inference": {"key": ...}, "management":
{...}, "API": {...}}`` into its working directory, with new keys on every start and an
inference key that expires (``token_expiration_min``). The gateway, the launcher, the
load tests, the benchmarks and the tests read it here. The two scripts that run inside
the TorchServe image with the standard library only (``healthcheck.py``, ``keyrefresh.py``)
keep their own three-line reader: that image has none of this project's packages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

KEY_FILE = "key_file.json"
KeyKind = Literal["inference", "management", "API"]


class KeyFileError(OSError):
    """The key file is missing, unreadable or lacks a key; the message names the file."""


def read_keys(path: Path) -> dict[str, str]:
    """Every key in the file by kind (``inference``, ``management``, ``API``)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"{path}: cannot read TorchServe's key file ({exc})") from None
    if not isinstance(data, dict):
        raise KeyFileError(f"{path}: not a TorchServe key file")
    return {kind: str(entry["key"]) for kind, entry in data.items() if isinstance(entry, dict) and "key" in entry}


def read_key(path: Path, kind: KeyKind = "inference") -> str:
    """One key; :class:`KeyFileError` if the file or the key is missing."""
    keys = read_keys(path)
    if kind not in keys:
        raise KeyFileError(f"{path}: no {kind} key (has: {', '.join(sorted(keys)) or 'none'})")
    return keys[kind]
