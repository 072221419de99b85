"""duoserve models add, piece by piece: input specs, the parity gate, atomic registration, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from contract.artifacts import artifact_path
from contract.manifest import ArtifactRecord, Manifest, ModelEntry, ParityRecord, TensorSpec, read_manifest
from stack.build import stages_of
from stack.models.add import parity_cases, read_sample
from stack.models.conversion import Produced
from stack.models.formats import detect
from stack.models.parity import Gate, check_reference
from stack.models.register import JOURNAL, STAGING, commit, recover
from stack.models.spec import Declared, RefusedError, merge_inputs, parse_input_option, sanitize


def test_input_option_syntax() -> None:
    ids = parse_input_option("ids:-1,-1:int64:0:30521")
    assert (ids.name, ids.shape, ids.dtype, ids.value_range) == ("ids", (-1, -1), "int64", (0.0, 30521.0))
    assert parse_input_option("x:-1,3,224,224:float32").value_range is None
    for bad, words in [
        ("ids", "expected NAME:SHAPE:DTYPE"),
        ("ids:-1,x:int64", "SHAPE must be comma-separated integers"),
        ("ids:8,16:int64", "the first axis is the batch axis"),
        ("ids:-1,0:int64", "every axis is -1"),
        ("ids:-1,4:string", "ids is string: string tensors are not supported"),
        ("ids:-1,4:float64", "is float64: float64 is not supported"),
        ("1ids:-1:int64", "is not a tensor name"),
        ("ids:-1:int64:a:b", "LOW and HIGH must be numbers"),
    ]:
        with pytest.raises(RefusedError, match=words.replace("(", r"\(")):
            parse_input_option(bad)


def test_declared_inputs_are_completed_never_contradicted() -> None:
    onnx_like = [Declared("ids", "int64", (None, None)), Declared("mask", "int64", (None, None))]
    with pytest.raises(RefusedError, match="axis 1 is dynamic; declare its maximum with --max-length"):
        merge_inputs(onnx_like, [], None)
    specs = merge_inputs(onnx_like, [parse_input_option("ids:-1,-1:int64:0:99")], 64)
    assert [(t.name, t.shape, t.max_shape, t.value_range) for t in specs] == [
        ("ids", (-1,), (64,), (0.0, 99.0)),
        ("mask", (-1,), (64,), None),
    ]
    image = [Declared("x", "float32", (None, 3, 224, 224))]
    for option, words in [
        ("x:-1,3,224,224:int64", "dtype int64 contradicts the model, which declares float32"),
        ("x:-1,3,224:float32", "3 axes contradict the model's 4"),
        ("x:-1,1,224,224:float32", "axis 1 is 1 but the model's is 3"),
        ("x:-1,-1,224,224:float32", "axis 1 is dynamic (-1) but the model's is 3"),
        ("y:-1,3:float32", "the model has no input 'y' (its inputs: x)"),
    ]:
        with pytest.raises(RefusedError, match=words.replace("(", r"\(").replace(")", r"\)")):
            merge_inputs(image, [parse_input_option(option)], None)
    script_like = [Declared("x", None, None)]
    with pytest.raises(
        RefusedError, match="does not declare its dtype and shape; give them with --input x:SHAPE:DTYPE"
    ):
        merge_inputs(script_like, [], None)
    (x,) = merge_inputs(script_like, [parse_input_option("x:-1,10:float32:-3:3")], None)
    assert (x.shape, x.value_range) == ((10,), (-3.0, 3.0))
    with pytest.raises(RefusedError, match="fixed batch size 1"):
        merge_inputs([Declared("x", "float32", (1, 10))], [], None)
    torch_export_like = [Declared("x", "float32", (None, None, 10), (None, 50, 10))]
    (seq,) = merge_inputs(torch_export_like, [], None)
    assert (seq.shape, seq.max_shape) == ((-1, 10), (50, 10))


def test_names_become_ones_json_and_tf_take() -> None:
    assert sanitize(["input.1", "x", "Identity:0", "0", "a b", "a_b"]) == {
        "input.1": "input_1",
        "x": "x",
        "Identity:0": "Identity",
        "0": "t_0",
        "a b": "a_b",
        "a_b": "a_b_2",
    }


def test_the_gate_records_the_worst_difference_and_refuses_over_tolerance() -> None:
    ref = {"y": np.array([[1.0, 2.0]], np.float32)}
    gate = Gate("the onnx artifact", "TorchScript", atol=1e-4, rtol=None)
    gate.add("batch 1", 1, ref, {"y": ref["y"] + 5e-5})
    gate.add("sample 1", 1, ref, {"y": ref["y"]}, sample=True)
    record = gate.record()
    assert record.batches == (1,)
    assert record.samples == 1
    assert record.outputs["y"].max_abs == pytest.approx(5e-5, rel=1e-2)  # float32 rounding of 2 + 5e-5
    assert record.outputs["y"].max_rel == pytest.approx(2.5e-5, rel=1e-2)
    with pytest.raises(RefusedError) as info:
        gate.add("batch 7", 1, ref, {"y": ref["y"] + 3e-4})
    assert str(info.value) == (
        "the onnx artifact disagrees with the source (TorchScript) on output y: max abs difference 0.0003 "
        "(relative 0.00015) on batch 7, over the tolerance 0.0001"
    )
    relaxed = Gate("x", "y", atol=1e-4, rtol=1e-3)
    relaxed.add("batch 1", 1, ref, {"y": ref["y"] + 1e-3})  # within 1e-4 + 1e-3 * |ref|
    with pytest.raises(RefusedError, match="has shape"):
        relaxed.add("batch 1", 1, ref, {"y": np.zeros((1, 3), np.float32)})
    with pytest.raises(RefusedError, match="source model's output y holds NaN or infinity on batch 1"):
        check_reference("batch 1", {"y": np.array([np.nan], np.float32)})


ENTRY = ModelEntry(
    name="toy",
    origin="user",
    inputs=(TensorSpec(name="ids", dtype="int64", shape=(-1,), max_shape=(6,), value_range=(0, 9)),),
    outputs=(TensorSpec(name="y", shape=(2,)),),
    max_batch=4,
)


def test_parity_cases_and_samples(tmp_path: Path) -> None:
    cases = parity_cases(ENTRY, None)
    # a dynamic axis at its maximum, and once shorter (3/5 of it): a model frozen to one length fails the gate
    assert {k: v["ids"].shape for k, v in cases.items()} == {
        "batch 1": (1, 6),
        "batch 4": (4, 6),
        "batch 3, shorter": (3, 3),
    }
    fixed = ENTRY.model_copy(update={"inputs": (TensorSpec(name="ids", dtype="int64", shape=(6,)),)})
    assert list(parity_cases(fixed, None)) == ["batch 1", "batch 4"]
    np.savez(tmp_path / "ok.npz", ids=np.arange(30).reshape(10, 3))
    sample = read_sample(tmp_path / "ok.npz", ENTRY.inputs)
    with_sample = parity_cases(ENTRY, sample)
    assert [k for k in with_sample if k.startswith("sample")] == ["sample 1", "sample 2", "sample 3"]
    assert with_sample["sample 3"]["ids"].shape == (2, 3)
    for content, words in [
        ({"x": np.zeros((2, 3))}, "holds ['x']; the model's inputs are ids"),
        ({"ids": np.zeros((2, 7), np.int64)}, "ids has rows of shape [7]; the model takes [≤6]"),
        ({"ids": np.zeros((2, 3), np.float32)}, "ids is float32; the model takes int64"),
    ]:
        np.savez(tmp_path / "bad.npz", **content)
        with pytest.raises(RefusedError, match=words.replace("[", r"\[").replace("(", r"\(")):
            read_sample(tmp_path / "bad.npz", ENTRY.inputs)
    (tmp_path / "not.npz").write_text("hello")
    with pytest.raises(RefusedError, match=r"not an \.npz of arrays"):
        read_sample(tmp_path / "not.npz", ENTRY.inputs)


def test_what_is_not_a_model_is_named(tmp_path: Path) -> None:
    cases = {
        "notes.txt": (b"hello", "not a model duoserve takes"),
        "empty.onnx": (b"", "the file is empty"),
        "text.pt": (b"hello", "not a torchscript model (it is not the zip archive such a model is)"),
        "text.keras": (b"hello", "not a keras model"),
        "zip.onnx": (b"PK\x03\x04rest", "not an ONNX model (it is a zip archive)"),
    }
    for name, (content, words) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(RefusedError, match=words.replace("(", r"\(").replace(")", r"\)")):
            detect(tmp_path / name)
    (tmp_path / "dir").mkdir()
    with pytest.raises(RefusedError, match="a directory that is not a SavedModel"):
        detect(tmp_path / "dir")
    with pytest.raises(RefusedError, match="no such file"):
        detect(tmp_path / "missing.onnx")
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"x")
    assert detect(tmp_path / "saved").key == "savedmodel"


def _stage(root: Path, tag: str) -> tuple[Path, ModelEntry]:
    staged = root / STAGING / "toy-1"
    records = {}
    for kind in ("onnx", "torchscript"):
        path = artifact_path(staged, "toy", kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{kind} {tag}")
        records[kind] = ArtifactRecord(path=path.relative_to(staged).as_posix(), sha256=tag * 8, recipe=tag)
    return staged, ENTRY.model_copy(update={"artifacts": records, "description": tag})


def test_commit_replaces_at_once_and_an_interrupted_one_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "artifacts"
    staged, first = _stage(root, "a")
    commit(root, Manifest(), "toy", first, staged)
    assert read_manifest(root).model("toy").description == "a"
    assert artifact_path(root, "toy", "onnx").read_text() == "onnx a"
    assert (root / "tf" / "models.config").exists()

    # a second add dies after moving its files in, before writing the manifest
    staged, second = _stage(root, "b")
    import stack.models.register as register

    def die(root: Path, text: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(register, "_write_manifest", die)
    with pytest.raises(KeyboardInterrupt):
        commit(root, read_manifest(root), "toy", second, staged)
    assert (root / JOURNAL).exists()
    assert artifact_path(root, "toy", "onnx").read_text() == "onnx b"  # half done
    monkeypatch.undo()
    assert recover(root) == "rolled back the interrupted change of model toy"
    assert artifact_path(root, "toy", "onnx").read_text() == "onnx a"
    assert read_manifest(root).model("toy").description == "a"
    assert not (root / JOURNAL).exists()
    assert sorted(p.name for p in artifact_path(root, "toy", "onnx").parent.iterdir()) == ["toy.onnx"]

    # removing leaves nothing of the model
    commit(root, read_manifest(root), "toy", None, None)
    assert "toy" not in read_manifest(root).models
    assert not artifact_path(root, "toy", "onnx").exists()


def test_a_dead_adds_staging_root_is_cleared(tmp_path: Path) -> None:
    leftover = tmp_path / STAGING / "toy-999999999"
    leftover.mkdir(parents=True)
    (leftover / "half.onnx").write_text("x")
    recover(tmp_path)
    assert not leftover.exists()
    json.dumps({})  # the journal format is plain JSON


def test_the_first_converter_whose_artifact_passes_the_gate_wins(tmp_path: Path) -> None:
    from stack.models.conversion import Conversion
    from stack.models.converters import first_faithful
    from stack.models.steps import Steps

    said: list[str] = []
    gated: list[Path] = []

    def gate(kind: str, path: Path) -> ParityRecord:
        gated.append(path)
        if path.name == "wrong.onnx":
            raise RefusedError("the onnx artifact disagrees with the source on output y")
        return ParityRecord(against="torch", tolerance_abs=1e-4, batches=(1,), outputs={})

    def conversion(work: str) -> Conversion:
        conv = Conversion(
            Steps(tmp_path / work, tmp_path / f"{work}.log"), tmp_path / work, said.append, tmp_path / "c"
        )
        conv.gate = gate
        return conv

    def fails(why: str) -> Produced:
        raise RefusedError(why)

    # a converter that fails, then one whose artifact the gate refuses, then one that passes
    conv = conversion("a")
    made = first_faithful(
        conv,
        "ONNX",
        ("torch.onnx", lambda: fails("no aten::erfinv")),
        ("tf2onnx", lambda: {"onnx": tmp_path / "wrong.onnx"}),
        ("third", lambda: {"onnx": tmp_path / "right.onnx"}),
    )
    assert made == {"onnx": tmp_path / "right.onnx"}
    assert gated == [tmp_path / "wrong.onnx", tmp_path / "right.onnx"]
    assert set(conv.parity) == {"onnx"}
    assert conv.missing == {}
    # none faithful, optional: recorded missing (only ONNX can be), every reason kept
    conv = conversion("b")
    made = first_faithful(
        conv,
        "ONNX",
        ("torch.onnx", lambda: fails("no aten::erfinv")),
        ("tf2onnx", lambda: fails("no Erfc")),
        optional=True,
    )
    assert made == {}
    assert conv.missing == {"onnx": "torch.onnx: no aten::erfinv; tf2onnx: no Erfc"}
    assert any("served by torch, triton and tf only" in line for line in said)
    # none faithful, required: refused with the one converter's own words
    with pytest.raises(RefusedError, match=r"^the onnx artifact disagrees with the source on output y$"):
        first_faithful(conversion("c"), "ONNX", ("tf2onnx", lambda: {"onnx": tmp_path / "wrong.onnx"}))
    spec = TensorSpec(name="x", shape=(2,))
    registered = ModelEntry(name="k", origin="user", inputs=(spec,), outputs=(spec,), max_batch=4).model_copy(
        update={"missing": {"onnx": "no Erfc"}}
    )
    assert registered.backends == ["torch", "triton", "tf"]
    assert [s.kind for s in stages_of(registered)] == ["mar"]


def test_the_slowdown_of_an_artifact_is_its_time_over_the_sources() -> None:
    from contract.manifest import InProcessLatency

    def timing(ms: float) -> InProcessLatency:
        return InProcessLatency(runtime="r", batch_1_ms=ms / 4, max_batch=8, max_batch_ms=ms, repeats=5)

    spec = TensorSpec(name="x", shape=(2,))
    entry = ModelEntry(name="k", inputs=(spec,), outputs=(spec,), max_batch=8)
    assert entry.slowdown("tf") is None  # nothing measured: nothing said
    entry = entry.model_copy(update={"latency": {"source": timing(10.0), "torchscript": timing(25.0)}})
    assert entry.slowdown("torchscript") == 2.5
    assert entry.slowdown("onnx") is None
