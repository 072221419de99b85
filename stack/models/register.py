"""Registering a model's artifacts all at once, or not at all.

``duoserve models add`` builds everything in a staging root beside the artifacts
(``artifacts/.staging/<name>-<pid>/``, the same layout). :func:`commit` then writes a
journal, moves the old artifacts aside, moves the new ones in, writes the manifest, and
only then deletes the old ones and the journal. A process killed at any point leaves
either the previous state or the new one: the next ``duoserve models`` command (or
:func:`recover`) finds the journal and rolls back, unless the manifest on disk is already
the new one, in which case it finishes the commit. A staging root left by a killed
``add`` is deleted. One ``duoserve models`` command runs at a time (a lock file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from contract.artifacts import LAYOUT, MANIFEST_NAME, artifact_path, atomic_file, sha256_text
from contract.manifest import Manifest, ModelEntry, read_manifest
from services.process import pid_alive
from stack.build import write_models_config

from .spec import RefusedError

STAGING = ".staging"
JOURNAL = ".models.journal.json"
LOCK = ".models.lock"


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the artifacts' lock (refusing at once if another ``duoserve models`` command holds it)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK).open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RefusedError(
                f"another duoserve models command is changing {root}; try again when it is done"
            ) from None
        try:
            recover(root)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def staging_root(root: Path, name: str) -> Path:
    """A fresh staging root for ``name`` (removed by :func:`recover` if the process dies)."""
    path = root / STAGING / f"{name}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _render(manifest: Manifest) -> str:
    return json.dumps(manifest.model_dump(mode="json", exclude_none=True), indent=2, sort_keys=True) + "\n"


def _write_manifest(root: Path, text: str) -> None:
    with atomic_file(root / MANIFEST_NAME) as tmp:
        tmp.write_text(text)


def _backup(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def commit(root: Path, manifest: Manifest, name: str, entry: ModelEntry | None, staged: Path | None) -> Manifest:
    """Make ``entry`` (or, with None, no entry) model ``name``'s state in ``root``, atomically (see module doc).

    ``staged`` is the staging root holding the new entry's artifacts at their layout paths.
    Returns the manifest now on disk.
    """
    new = manifest.model_copy(deep=True)
    new.models.pop(name, None)
    if entry is not None:
        new.models[name] = entry
    new.updated = None
    text = _render(new)
    moves: list[dict[str, str | None]] = []
    for kind in LAYOUT:
        final = artifact_path(root, name, kind)
        incoming = artifact_path(staged, name, kind) if staged is not None and entry is not None else None
        if incoming is not None and entry is not None and kind in entry.artifacts and incoming.exists():
            moves.append({"final": str(final), "staged": str(incoming), "backup": str(_backup(final))})
        elif final.exists() or final.is_symlink():
            moves.append({"final": str(final), "staged": None, "backup": str(_backup(final))})
    journal = {"model": name, "moves": moves, "manifest": sha256_text(text)}
    with atomic_file(root / JOURNAL) as tmp:
        tmp.write_text(json.dumps(journal, indent=2))
    for move in moves:
        final, backup = Path(str(move["final"])), Path(str(move["backup"]))
        _remove(backup)
        if final.exists() or final.is_symlink():
            os.replace(final, backup)
        if move["staged"] is not None:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(str(move["staged"]), final)
    _write_manifest(root, text)
    _finish(root, journal)
    for move in moves:  # a removed model leaves no empty folder (tf/<name>/ held the version folder)
        parent = Path(str(move["final"])).parent
        while move["staged"] is None and parent != root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    if staged is not None:
        shutil.rmtree(staged, ignore_errors=True)
    written = read_manifest(root)
    write_models_config(root, written)  # derived from the manifest; recover() rewrites it too
    return written


def _finish(root: Path, journal: Mapping[str, Any]) -> None:
    for move in journal["moves"]:
        _remove(Path(str(move["backup"])))
    (root / JOURNAL).unlink(missing_ok=True)


def recover(root: Path) -> str | None:
    """Finish or roll back an interrupted commit and drop abandoned staging roots; says what it did."""
    done: str | None = None
    journal_path = root / JOURNAL
    if journal_path.exists():
        journal = json.loads(journal_path.read_text())
        manifest = root / MANIFEST_NAME
        current = sha256_text(manifest.read_text()) if manifest.exists() else ""
        if current == journal["manifest"]:
            _finish(root, journal)
            done = f"finished the interrupted change of model {journal['model']}"
        else:
            for move in reversed(journal["moves"]):
                final, backup = Path(move["final"]), Path(move["backup"])
                if backup.exists() or backup.is_symlink():
                    _remove(final)
                    os.replace(backup, final)
                elif move["staged"] is not None:
                    _remove(final)  # it was new: the previous state had none
            journal_path.unlink()
            done = f"rolled back the interrupted change of model {journal['model']}"
        write_models_config(root, read_manifest(root, missing_ok=True))
    staging = root / STAGING
    if staging.exists():
        for path in staging.iterdir():
            pid = path.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or not pid_alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)
    return done
