"""Where a report's figures were measured: hardware, OS, and package versions.

Versions come from ``importlib.metadata``: the frameworks are never imported here.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from contract.stackinfo import StackInfo

PACKAGES = (
    "torch", "tensorflow", "torchserve", "onnxruntime", "tensorflow-serving-api", "keras",
    "locust", "fastapi", "uvicorn", "aiohttp", "numpy",
)  # fmt: skip


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform says)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def gpus() -> list[str]:
    """GPU names and memory from nvidia-smi, or an empty list."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def describe(stack: StackInfo | None = None) -> dict[str, Any]:
    """The environment block of a report."""
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpus": gpus(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions(),
        "tf_server": stack.tf_server if stack else "unknown",
        "torch_models": stack.torch_models if stack else None,
    }
