"""onnx2torch on what today's torch.onnx writes: why duoserve registers converters, and that they are right.

torch.onnx's default exporter (dynamo) writes opset 18 and up; onnx2torch 1.5.15, its last
release, stops at opset 17's op versions. Three ordinary models show it, and the same three
convert, trace with dynamic shapes, and agree with ONNX Runtime once
``services.torch_api.onnx2torch_ops`` is registered.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from services.torch_api.convert import _onnx2torch
from tests.utils.servers import REPO

# torch.onnx's exporter and tracing warn about their own internals (deprecations, tracer notes)
pytestmark = pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::UserWarning", "ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning"
)


class Cnn(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


class Flat(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.reshape(x.shape[0], -1))


class Encoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(100, 16)
        layer = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = torch.nn.Linear(16, 2)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(ids), src_key_padding_mask=mask == 0)
        keep = mask.unsqueeze(-1).float()
        return self.fc((h * keep).sum(1) / keep.sum(1).clamp(min=1))


def _inputs(name: str, rows: int, length: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(rows * 100 + length)
    if name == "cnn":
        return (torch.randn(rows, 1, 8, 8, generator=g),)
    if name == "flat":
        return (torch.randn(rows, 8, 8, generator=g),)
    mask = (torch.arange(length)[None, :] < torch.randint(1, length + 1, (rows, 1), generator=g)).long()
    return torch.randint(0, 100, (rows, length), generator=g), mask


MODELS = {"cnn": Cnn, "flat": Flat, "encoder": Encoder}


def _export(name: str, opset: int, path: Path) -> Path:
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    batch, seq = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("seq", min=2, max=32)
    shapes = ({0: batch, 1: seq}, {0: batch, 1: seq}) if name == "encoder" else ({0: batch},)
    torch.onnx.export(
        model, _inputs(name, 3, 12), str(path), dynamo=True, dynamic_shapes=shapes, opset_version=opset,
        external_data=False,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    out = tmp_path_factory.mktemp("onnx")
    return {(n, o): _export(n, o, out / f"{n}-{o}.onnx") for n in MODELS for o in (18, 20)}


def test_onnx2torch_alone_cannot_convert_them(exported: dict[tuple[str, int], Path]) -> None:
    script = (
        "import sys, importlib, types\n"
        "tv = types.ModuleType('torchvision'); tv.ops = types.ModuleType('torchvision.ops')\n"
        "tv.ops.nms = tv.ops.roi_align = tv.ops.box_convert = None\n"
        "sys.modules['torchvision'] = tv; sys.modules['torchvision.ops'] = tv.ops\n"
        "import onnx2torch\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        onnx2torch.convert(path); print('ok')\n"
        "    except NotImplementedError as exc:\n"
        "        print(str(exc).splitlines()[0])\n"
    )
    paths = [str(exported[("cnn", 20)]), str(exported[("flat", 20)]), str(exported[("encoder", 20)])]
    done = subprocess.run([sys.executable, "-c", script, *paths], cwd=REPO, capture_output=True, text=True, timeout=120)
    said = done.stdout.strip().splitlines()
    assert len(said) == 3, done.stderr[-2000:]
    assert "operation_type='ReduceMean', version=18" in said[0], said
    assert "operation_type='Reshape', version=19" in said[1], said
    assert "operation_type='Shape', version=19" in said[2], said


@pytest.mark.parametrize("opset", [18, 20])
@pytest.mark.parametrize("name", list(MODELS))
def test_with_the_registrations_they_convert_trace_and_agree_with_onnx_runtime(
    exported: dict[tuple[str, int], Path], name: str, opset: int
) -> None:
    path = exported[(name, opset)]
    module = _onnx2torch().convert(str(path)).eval()
    traced = torch.jit.trace(module, _inputs(name, 3, 12), check_trace=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = [i.name for i in session.get_inputs()]
    for rows, length in ((1, 5), (7, 12), (32, 31)):  # other shapes than the traced one
        args = _inputs(name, rows, length)
        (want,) = session.run(None, {n: a.numpy() for n, a in zip(feeds, args, strict=True)})
        with torch.inference_mode():
            got = traced(*args).numpy()
        assert got.shape == want.shape
        assert float(np.abs(got - want).max()) <= 1e-5, (name, opset, rows, length)
