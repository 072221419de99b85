"""``save_torch``: the trace kept for TorchServe, frozen when freezing reproduces it and runs faster.

Keras 3 on its torch backend transposes each kernel to its channels-last layout on every call;
the module below does the same, so a frozen trace has that work folded into constants. Which of
the two is kept is decided by timing them, so the tests assert what holds either way: the
saved artifact reproduces the module on every case, the result carries both times, and a
frozen artifact has no parameters left.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from contract.manifest import ModelEntry, TensorSpec
from services.torch_api.convert import _frozen_if_faster, save_torch

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")


class ChannelsLast(torch.nn.Module):
    """A conv whose kernel is stored (H, W, in, out) and transposed on every call, as Keras on torch does."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.kernel = torch.nn.Parameter(torch.randn(3, 3, 3, 8))
        self.bias = torch.nn.Parameter(torch.randn(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.kernel.permute(3, 2, 0, 1)
        y = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), weight, self.bias, padding=1)
        return y.mean(dim=(2, 3))


IMAGE, LOGITS = TensorSpec(name="x", shape=(8, 8, 3)), TensorSpec(name="y", shape=(8,))
ENTRY = ModelEntry(name="cl", origin="user", inputs=(IMAGE,), outputs=(LOGITS,), max_batch=4)
CASES: list[tuple[torch.Tensor, ...]] = [(torch.randn(n, 8, 8, 3),) for n in (1, 3, 4)]


def test_the_saved_trace_reproduces_the_module_and_says_whether_it_is_frozen(tmp_path: Path) -> None:
    module = ChannelsLast().eval()
    found = save_torch(module, ENTRY, CASES, tmp_path)
    assert found["kind"] == "torchscript"
    assert found["trace_ms"] > 0
    assert found["frozen_ms"] > 0
    assert isinstance(found["frozen"], bool)
    loaded = torch.jit.load(found["path"])  # type: ignore[no-untyped-call]
    with torch.inference_mode():
        for (x,) in CASES:
            torch.testing.assert_close(loaded(x), module(x), atol=1e-5, rtol=1e-5)
    # a frozen graph holds the kernel as a constant: no parameter is left to transpose per call
    assert (len(list(loaded.parameters())) == 0) == found["frozen"]


def test_a_frozen_graph_that_differs_from_the_trace_is_not_kept() -> None:
    module = ChannelsLast().eval()
    traced = torch.jit.trace(module, CASES[0], check_trace=False)  # type: ignore[no-untyped-call]

    class Other(ChannelsLast):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) + 1.0

    # checked against a module the frozen graph does not reproduce, the trace is kept, untimed
    kept, timed = _frozen_if_faster(traced, Other().eval(), CASES)
    assert kept is traced
    assert timed == {"frozen": False}
