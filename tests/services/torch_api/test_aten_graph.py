"""The torch side of the ATen lowering: ``to_graph`` writes the core-ATen graph and weights of a ``.pt2``.

Runs the real worker (``python -m services.torch_api.convert JOB``) as ``duoserve models add`` does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.utils.aten import entry, export
from tests.utils.servers import REPO

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning", "ignore::DeprecationWarning")


class TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.register_buffer("scale", torch.tensor([2.0, 3.0, 4.0]))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.fc(x) * self.scale
        return y * mask.unsqueeze(-1), y.sum(1)


def _job(work: Path, task: dict[str, Any]) -> dict[str, Any]:
    job, result = work / "job.json", work / "result.json"
    job.write_text(json.dumps({"tasks": [task], "result": str(result)}))
    subprocess.run([sys.executable, "-m", "services.torch_api.convert", str(job)], cwd=REPO, check=True, timeout=300)
    answer: dict[str, Any] = json.loads(result.read_text())
    return answer


def test_to_graph_writes_nodes_inputs_outputs_and_weights_in_the_contracts_order(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = TwoInputs().eval()
    example = (torch.randn(3, 5, 4), torch.ones(3, 5))
    batch, seq = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("seq", min=2, max=64)
    pt2 = export(module, example, ({0: batch, 1: seq}, {0: batch, 1: seq}), tmp_path / "m.pt2")
    contract = entry([("x", example[0]), ("mask", example[1])], ["masked", "summed"], {"x": [0], "mask": [0]})
    task = {"op": "to_graph", "path": str(pt2), "contract": contract.model_dump_json(), "out": str(tmp_path / "g")}
    answer = _job(tmp_path, task)
    assert answer["ok"], answer.get("error")
    assert "aten.addmm.default" in answer["results"][0]["targets"]
    graph = json.loads((tmp_path / "g/graph.json").read_text())
    assert graph["format"] == 1
    assert [(i["name"], i["dtype"], i["shape"]) for i in graph["inputs"]] == [
        ("x", "float32", [None, None, 4]),
        ("mask", "float32", [None, None]),
    ]
    assert len(graph["outputs"]) == 2
    assert all("node" in o for o in graph["outputs"])
    names = {n["name"] for n in graph["nodes"]}
    assert all(o["node"] in names for o in graph["outputs"])
    sizes = [n for n in graph["nodes"] if n["target"] == "aten.sym_size.int"]
    assert sizes, "a reshape over a dynamic batch and sequence reads its sizes from the input"
    with np.load(tmp_path / "g/weights.npz") as weights:
        stored = {k: weights[k] for k in weights.files}
    assert set(stored) == set(graph["weights"])
    values = sorted((v.shape, v.tobytes()) for v in stored.values())
    state = module.state_dict()
    assert values == sorted((tuple(t.shape), t.numpy().tobytes()) for t in state.values())


def test_to_graph_refuses_a_contract_with_another_number_of_inputs(tmp_path: Path) -> None:
    module = TwoInputs().eval()
    example = (torch.randn(3, 5, 4), torch.ones(3, 5))
    pt2 = export(module, example, None, tmp_path / "m.pt2")
    contract = entry([("x", example[0])], ["masked", "summed"])
    task = {"op": "to_graph", "path": str(pt2), "contract": contract.model_dump_json(), "out": str(tmp_path / "g")}
    answer = _job(tmp_path, task)
    assert not answer["ok"]
    assert answer["error"] == "the program takes 2 inputs, the contract names 1"
