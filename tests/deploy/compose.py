"""Run Debian's ``docker-compose`` (1.29) without a daemon: ``config`` validates and merges files."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CI_ENV = REPO / "deploy" / "ci.env"
BASE = ("docker-compose.yml",)
#: What `docker compose up` loads on its own: the base file and docker-compose.override.yml.
DEFAULT = ("docker-compose.yml", "docker-compose.override.yml")
CPU = ("docker-compose.yml", "docker-compose.cpu.yml")
PROFILES = ("loadtest", "monitoring")


def binary() -> str:
    """The docker-compose executable; fails (never skips) when it is missing."""
    found = shutil.which("docker-compose")
    if found is None:
        raise AssertionError(
            "docker-compose is not installed; the deployment checks need it: apt-get install -y docker-compose"
        )
    return found


def run(files: tuple[str, ...] | None, *args: str, env_file: Path = CI_ENV) -> subprocess.CompletedProcess[str]:
    """``docker-compose [-f ...] --env-file ci.env ARGS`` in the repository root; ``None``: compose picks the files."""
    cmd = [binary(), "--env-file", str(env_file)]
    for name in files or ():
        cmd += ["-f", name]
    return subprocess.run([*cmd, *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


@functools.cache
def merged(files: tuple[str, ...] | None, profiles: tuple[str, ...] = PROFILES) -> dict[str, Any]:
    """The ``docker-compose config`` output (interpolated, merged), every profile on by default."""
    flags = [arg for p in profiles for arg in ("--profile", p)]
    result = run(files, *flags, "config")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = yaml.safe_load(result.stdout)
    return data


def raw(name: str) -> dict[str, Any]:
    """A compose file as written, without interpolation."""
    data: dict[str, Any] = yaml.safe_load((REPO / name).read_text())
    return data


def port_of(entry: str | dict[str, Any]) -> tuple[str, int, int]:
    """(host address, published port, container port) of a merged ``ports`` entry.

    docker-compose 1.29 writes an entry with a host address as ``"IP:PUBLISHED:TARGET/tcp"``
    and one without as a mapping; a missing address means every interface.
    """
    if isinstance(entry, dict):
        return str(entry.get("host_ip") or "0.0.0.0"), int(entry["published"]), int(entry["target"])
    spec = entry.split("/", 1)[0]
    host, published, target = spec.rsplit(":", 2) if spec.count(":") >= 2 else ("0.0.0.0", *spec.split(":"))
    return host, int(published), int(target)
