"""Bounded log files: a file that rolls over at a size and keeps a few old copies, and a wrapper
that puts a command's output there.

``python -m services.logsink [--max-bytes N] [--backups K] LOG -- CMD [ARGS...]`` runs CMD
with its stdout and stderr going through a pipe into ``LOG``; when ``LOG`` would pass
``N`` bytes it becomes ``LOG.1`` (``LOG.1`` becomes ``LOG.2``, ... up to ``LOG.K``, the oldest
dropped), so the output takes at most ``(K + 1) × N`` bytes however long CMD runs. The
wrapper passes SIGTERM and SIGINT on to CMD, keeps copying until CMD's output ends, and
exits with CMD's status (128 + the signal's number when a signal ended it).

:class:`services.process.Process` uses it for every log it writes on a server's behalf (the
launchers' own output under ``make up``, TorchServe's console, the TF binary's output):
those processes outlive nothing that could rotate a file they hold open.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import BinaryIO

#: Default roll-over size and the number of old copies kept (10 MiB × 4 files at most).
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 3


class RotatingFile:
    """A binary log file that rolls over before it passes ``max_bytes``, keeping ``backups`` old copies."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS, *, append: bool = True) -> None:
        if max_bytes < 1 or backups < 0:
            raise ValueError(f"max_bytes must be >= 1 and backups >= 0 (got {max_bytes}, {backups})")
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("ab" if append else "wb")
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        """Append ``data``; a chunk larger than the limit is cut into pieces that each fit."""
        while data:
            if self._size and self._size + len(data) > self.max_bytes:
                self.rotate()  # before a chunk that does not fit: lines stay whole where they can
            room = self.max_bytes - self._size
            piece, data = data[:room], data[room:]
            self._file.write(piece)
            self._size += len(piece)
        self._file.flush()

    def rotate(self) -> None:
        """``LOG`` → ``LOG.1`` → ... → ``LOG.<backups>`` (dropped beyond); a fresh, empty ``LOG``."""
        self._file.close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
            if self.path.exists():
                self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = self.path.open("wb")
        self._size = 0

    def close(self) -> None:
        self._file.close()


def run(
    log: Path,
    cmd: list[str],
    max_bytes: int = MAX_BYTES,
    backups: int = BACKUPS,
    append: bool = True,
    forward_signals: bool = True,
) -> int:
    """Run ``cmd`` with its output rolled into ``log``; returns the status to exit with.

    ``forward_signals=False`` when the caller signals the whole process group (CMD gets the
    signal already; a second SIGTERM would make uvicorn, say, skip its graceful shutdown).
    """
    sink = RotatingFile(log, max_bytes, backups, append=append)
    try:
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    except OSError as exc:
        sink.write(f"logsink: cannot start {cmd[0]}: {exc}\n".encode())
        sink.close()
        return 127

    def forward(signum: int, frame: FrameType | None) -> None:
        if forward_signals and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    assert child.stdout is not None
    fd = child.stdout.fileno()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
            continue
        if not chunk:
            break
        sink.write(chunk)
    code = child.wait()
    sink.close()
    return code if code >= 0 else 128 - code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.logsink", description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-bytes", type=int, default=MAX_BYTES)
    parser.add_argument("--backups", type=int, default=BACKUPS)
    parser.add_argument("--truncate", action="store_true", help="start LOG empty instead of appending")
    parser.add_argument("--group", action="store_true", help="the caller signals the process group: do not forward")
    parser.add_argument("log", type=Path)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given after --")
    if args.max_bytes < 1 or args.backups < 0:
        parser.error("--max-bytes must be at least 1 and --backups at least 0")
    return run(args.log, cmd, args.max_bytes, args.backups, append=not args.truncate, forward_signals=not args.group)


if __name__ == "__main__":
    sys.exit(main())
