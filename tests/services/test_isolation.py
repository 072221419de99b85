"""tf_api never imports torch; the neutral modules import neither framework."""

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
        ("services.tf_api.export", ["tensorflow"]),
        ("services.tf_api.models", ["tensorflow"]),
        ("services.build", []),
        ("services.common.validation", []),
        ("services.common.data", []),
        ("services.tf_api.__main__", []),
        ("services.tf_api.settings", []),
        ("services.tf_api.compat.server", ["tensorflow"]),
        ("services.stack", []),
        ("gateway.app", []),
    ],
)
def test_framework_imports(module: str, allowed: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == repr(allowed)
