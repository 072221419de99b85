"""tf_api's modules never import torch (the launcher and config reader import no framework at all)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = (
    "import sys, importlib; importlib.import_module({module!r}); "
    "print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))"
)


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("services.tf_api.__main__", []),
        ("services.tf_api.settings", []),
        ("services.tf_api.binary", []),
        ("services.tf_api.compat.server", ["tensorflow"]),
        ("benchmarks.tf_server", ["tensorflow"]),
    ],
)
def test_no_torch(module: str, allowed: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == repr(allowed)
