"""At run time, tf_api never loads torch and the neutral modules load neither framework.

``make lint`` checks the static imports (import-linter); this checks what importing a
module really loads, lazy and dynamic imports included.
"""

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
        # the ATen lowering's two halves: each loads its own framework only
        ("services.tf_api.aten", ["tensorflow"]),
        ("services.torch_api.aten_graph", ["torch"]),
        ("stack.build", []),
        ("contract.tensors", []),
        ("contract.manifest", []),
        ("services.datasets", []),
        ("services.tf_api.__main__", []),
        ("services.tf_api.settings", []),
        ("services.tf_api.compat.server", ["tensorflow"]),
        ("stack.native", []),
        # Triton's launcher and its model file: the framework loads in the stub, never in the launcher
        ("services.triton_api.__main__", []),
        ("services.triton_api.model", []),
        ("loadtests.payload", []),
        ("gateway.app", []),
        # benchmarks.frameworks: only a worker imports a framework, and only its own
        ("benchmarks.frameworks.__main__", []),
        ("benchmarks.frameworks.worker", []),
        ("benchmarks.frameworks.inference_torch", ["torch"]),
        ("benchmarks.frameworks.inference_tf", ["tensorflow"]),
        ("benchmarks.frameworks.inference_ort", []),
        ("loadtests.frameworks_link", []),
    ],
)
def test_framework_imports(module: str, allowed: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == repr(allowed)
