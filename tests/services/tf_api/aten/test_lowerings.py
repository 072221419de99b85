"""The ATen lowering op by op: each op exported from torch with a dynamic batch (and a dynamic
sequence where it has one), lowered into TF, and run at batch 1, 3 and 8 against torch.

Every case names the overloads its exported graph must contain, so a case tests the lowering
it claims to. The torch side runs here; every TF run happens in one TF worker job
(``run_graph``, the same traced function ``from_graph`` saves), so torch and TF never share a
process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.utils.aten import entry, export, max_diff, read_cases, reference, tf_job, to_graph, write_cases

# torch.export warns about its own internals (pytree deprecations, fake-tensor notes)
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning", "ignore::DeprecationWarning")

TOLERANCE = 1e-5
SEQ = "S"  # a dynamic (sequence) axis in an input's per-instance shape


class Fn(torch.nn.Module):
    """A function of the inputs as a module, with optional constant tensors (``self.c0``, ...) as buffers."""

    def __init__(self, fn: Callable[..., Any], consts: tuple[torch.Tensor, ...] = ()) -> None:
        super().__init__()
        self.fn = fn
        for i, c in enumerate(consts):
            self.register_buffer(f"c{i}", c)

    def forward(self, *args: torch.Tensor) -> Any:
        return self.fn(self, *args)


@dataclass
class Op:
    name: str
    targets: tuple[str, ...]
    make: Callable[[], torch.nn.Module]
    #: per input: (per-instance shape with SEQ for a dynamic axis, kind: f float, p positive, b bool, iN ints < N)
    inputs: list[tuple[tuple[Any, ...], str]] = field(default_factory=lambda: [((6,), "f")])


def fn(f: Callable[..., Any], *consts: torch.Tensor) -> Callable[[], torch.nn.Module]:
    return lambda: Fn(lambda self, *a: f(*a) if not consts else f(self, *a), consts)


def op(name: str, targets: str | tuple[str, ...], f: Callable[..., Any], *inputs: tuple[tuple[Any, ...], str]) -> Op:
    return Op(name, (targets,) if isinstance(targets, str) else targets, fn(f), list(inputs) or [((6,), "f")])


F6, P6, S4, B6 = ((6,), "f"), ((6,), "p"), ((SEQ, 4), "f"), ((6,), "b")
torch.manual_seed(0)
W64 = torch.randn(6, 4)

OPS: list[Op] = [
    # elementwise
    op("add", "aten.add.Tensor", lambda x, y: x + y, F6, F6),
    op("add_alpha_broadcast", "aten.add.Tensor", lambda x, y: torch.add(x, y[:, :1], alpha=2.5), S4, S4),
    op("add_scalar", "aten.add.Tensor", lambda x: x + 1.5),
    op("sub", "aten.sub.Tensor", lambda x, y: x - y, F6, F6),
    op("rsub_scalar", "aten.sub.Tensor", lambda x: 1.0 - x),
    op("mul", "aten.mul.Tensor", lambda x, y: x * y, F6, F6),
    op("mul_int_by_float", "aten.mul.Tensor", lambda i: i * 0.5, ((6,), "i9")),
    op("div", "aten.div.Tensor", lambda x, y: x / y, F6, P6),
    op("div_int_int", "aten.div.Tensor", lambda i, j: i / (j + 1), ((6,), "i9"), ((6,), "i9")),
    op("div_floor", "aten.div.Tensor_mode", lambda x, y: torch.div(x, y, rounding_mode="floor"), F6, P6),
    op("div_trunc", "aten.div.Tensor_mode", lambda x, y: torch.div(x, y, rounding_mode="trunc"), F6, P6),
    op("remainder", "aten.remainder.Tensor", lambda x, y: torch.remainder(x, y), F6, P6),
    op("fmod", "aten.fmod.Tensor", lambda x, y: torch.fmod(x, y), F6, P6),
    op("pow_scalar", "aten.pow.Tensor_Scalar", lambda x: x**3),
    op("square", "aten.pow.Tensor_Scalar", lambda x: x**2),
    op("pow_tensor", "aten.pow.Tensor_Tensor", lambda p, x: p**x, P6, F6),
    op("maximum", "aten.maximum.default", torch.maximum, F6, F6),
    op("minimum", "aten.minimum.default", torch.minimum, F6, F6),
    op("clamp", "aten.clamp.default", lambda x: x.clamp(-0.5, 0.7)),
    op("clamp_min", "aten.clamp.default", lambda x: x.clamp(min=0.1)),
    op("hardtanh", "aten.hardtanh.default", F.hardtanh),
    *[
        op(name, f"aten.{name}.default", getattr(torch, name), kind)
        for name, kind in [
            ("neg", F6),
            ("exp", F6),
            ("expm1", F6),
            ("log", P6),
            ("log1p", P6),
            ("log2", P6),
            ("sqrt", P6),
            ("rsqrt", P6),
            ("abs", F6),
            ("sin", F6),
            ("cos", F6),
            ("tanh", F6),
            ("sigmoid", F6),
            ("relu", F6),
            ("erf", F6),
            ("reciprocal", P6),
            ("floor", F6),
            ("ceil", F6),
            ("round", F6),
            ("trunc", F6),
            ("sign", F6),
        ]
    ],
    op("gelu", "aten.gelu.default", F.gelu),
    op("gelu_tanh", "aten.gelu.default", lambda x: F.gelu(x, approximate="tanh")),
    op("silu", ("aten.sigmoid.default", "aten.mul.Tensor"), F.silu),
    op("leaky_relu", "aten.leaky_relu.default", lambda x: F.leaky_relu(x, 0.2)),
    op("elu", "aten.elu.default", F.elu),
    op("hardsigmoid", "aten.clamp.default", F.hardsigmoid),
    op("hardswish", "aten.clamp.default", F.hardswish),
    op("softmax", "aten._softmax.default", lambda x: torch.softmax(x, -1), S4),
    op("softmax_seq", "aten._softmax.default", lambda x: torch.softmax(x, 1), S4),
    op("log_softmax", "aten._log_softmax.default", lambda x: torch.log_softmax(x, -1), S4),
    # comparison, logic, where
    *[
        op(
            f"{name}_{kind}",
            f"aten.{name}.{kind}",
            (lambda f: lambda x, y: f(x, y))(getattr(torch, name))
            if kind == "Tensor"
            else (lambda f: lambda x: f(x, 0.25))(getattr(torch, name)),
            *([F6, F6] if kind == "Tensor" else [F6]),
        )
        for name in ("eq", "ne", "lt", "le", "gt", "ge")
        for kind in ("Tensor", "Scalar")
    ],
    op("eq_int_scalar", "aten.eq.Scalar", lambda i: i == 3, ((6,), "i5")),
    op("where", "aten.where.self", lambda b, x, y: torch.where(b, x, y), B6, F6, F6),
    op("where_scalar", ("aten.where.self", "aten.scalar_tensor.default"), lambda x: torch.where(x > 0, x, 0.0)),
    op("masked_fill", "aten.where.self", lambda x, b: x.masked_fill(b, -1e4), F6, B6),
    op("logical_not", "aten.logical_not.default", torch.logical_not, B6),
    op("logical_and", "aten.logical_and.default", torch.logical_and, B6, B6),
    op("logical_or", "aten.logical_or.default", torch.logical_or, B6, B6),
    op("bitwise_and", "aten.bitwise_and.Tensor", lambda a, b: a & b, B6, B6),
    op("bitwise_or", "aten.bitwise_or.Tensor", lambda a, b: a | b, B6, B6),
    op("bitwise_not", "aten.bitwise_not.default", lambda a: ~a, B6),
    op("bitwise_and_int", "aten.bitwise_and.Tensor", lambda i, j: i & j, ((6,), "i16"), ((6,), "i16")),
    op("isnan", "aten.isnan.default", lambda x: torch.isnan(torch.log(x)), F6),
    # matrix products
    Op("mm", ("aten.mm.default",), fn(lambda self, x: x @ self.c0, W64), [F6]),
    Op("addmm_linear", ("aten.addmm.default", "aten.permute.default"), lambda: torch.nn.Linear(6, 4), [F6]),
    Op("linear_3d", ("aten.addmm.default", "aten.view.default"), lambda: torch.nn.Linear(4, 3), [S4]),
    op("bmm", "aten.bmm.default", lambda x, y: x @ y.transpose(1, 2), S4, S4),
    op(
        "matmul_4d",
        "aten.bmm.default",
        lambda x: (
            x.view(x.shape[0], x.shape[1], 2, 2).transpose(1, 2)
            @ x.view(x.shape[0], x.shape[1], 2, 2).permute(0, 2, 3, 1)
        ),
        S4,
    ),
    # shapes, views, slicing
    op("flatten", "aten.view.default", lambda x: x.flatten(1), ((SEQ, 4), "f")),
    op(
        "view_symbolic", ("aten.view.default", "_operator.mul"), lambda x: x.reshape(x.shape[0] * x.shape[1], 4) * 2, S4
    ),
    op("view_split_heads", "aten.view.default", lambda x: x.view(x.shape[0], x.shape[1], 2, 2), S4),
    op("permute", "aten.permute.default", lambda x: x.permute(2, 0, 1).contiguous(), S4),
    op("expand", "aten.expand.default", lambda x: x[:, None].expand(-1, 3, -1) + 0, F6),
    op("expand_seq", "aten.expand.default", lambda x, y: x[:, :1].expand_as(y) + y, S4, S4),
    op("unsqueeze", "aten.unsqueeze.default", lambda x: x.unsqueeze(-1) * 1, S4),
    op("squeeze", "aten.squeeze.dims", lambda x: x.squeeze(1) + 1, ((1, 6), "f")),
    op("select", "aten.select.int", lambda x: x[:, 2], S4),
    op("select_last", "aten.select.int", lambda x: x[:, -1], S4),
    op("slice", "aten.slice.Tensor", lambda x: x[:, 1:-1].sum(1), S4),
    op("slice_step", "aten.slice.Tensor", lambda x: x[:, ::2] + 0, S4),
    op("slice_half", ("aten.slice.Tensor", "_operator.floordiv"), lambda x: x[:, : x.shape[1] // 2].sum(1), S4),
    op("sym_sub", ("aten.slice.Tensor", "_operator.sub"), lambda x: x[:, : x.shape[1] - 1].sum(1), S4),
    op(
        "sym_add",
        ("aten.view.default", "_operator.add"),
        lambda x, y: torch.cat([x, y], 1).reshape(x.shape[0], (x.shape[1] + y.shape[1]) * 4),
        S4,
        S4,
    ),
    op("sym_mod", ("aten.slice.Tensor", "_operator.mod"), lambda x: x[:, : x.shape[1] % 3 + 1].sum(1), S4),
    op("narrow", "aten.slice.Tensor", lambda x: x.narrow(2, 1, 2) + 0, S4),
    op("cat", "aten.cat.default", lambda x, y: torch.cat([x, y * 2], 1), S4, S4),
    op("stack", "aten.cat.default", lambda x, y: torch.stack([x, y], -1), F6, F6),
    op("split", "aten.split_with_sizes.default", lambda x: torch.split(x, [1, 3], -1)[1] * 1, S4),
    op("chunk", "aten.split_with_sizes.default", lambda x: torch.chunk(x, 2, -1)[1] * 1, S4),
    op("unbind", "aten.squeeze.dims", lambda x: torch.unbind(x, -1)[2] * 1, S4),
    op("clone", "aten.clone.default", lambda x: x.permute(0, 2, 1).contiguous(), S4),
    op("to_int", "aten._to_copy.default", lambda x: (x * 3).to(torch.int64)),
    op("pad", "aten.constant_pad_nd.default", lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), S4),
    op("repeat", "aten.repeat.default", lambda x: x.repeat(1, 2, 3), S4),
    op("flip", "aten.flip.default", lambda x: x.flip(1), S4),
    # reductions
    op("sum_dim", "aten.sum.dim_IntList", lambda x: x.sum(1), S4),
    op("sum_all", "aten.sum.dim_IntList", lambda x: x.sum() + x * 0, S4),
    op("sum_int", "aten.sum.dim_IntList", lambda i: i.sum(-1), ((SEQ,), "i9")),
    op("mean_keepdim", "aten.mean.dim", lambda x: x.mean(-1, keepdim=True), S4),
    op("mean_all", "aten.mean.default", lambda x: x.mean() + x * 0, S4),
    op("prod", "aten.prod.dim_int", lambda x: x.prod(-1), S4),
    op("amax", "aten.amax.default", lambda x: x.amax(1), S4),
    op("amin", "aten.amin.default", lambda x: x.amin((1, 2)), S4),
    op("max_dim", "aten.max.dim", lambda x: x.max(1)[0] + x.max(1)[1], S4),
    op("min_dim", "aten.min.dim", lambda x: x.min(-1, keepdim=True)[1] * 1, S4),
    op("argmax", "aten.argmax.default", lambda x: x.argmax(-1), S4),
    op("any", "aten.any.dim", lambda b: b.any(-1), B6),
    op("all", ("aten.any.dim", "aten.logical_not.default"), lambda b: b.all(-1), B6),
    op("var", "aten.var.correction", lambda x: x.var(1), S4),
    op("std_unbiased_false", "aten.var.correction", lambda x: x.std(-1, unbiased=False), S4),
    op("vector_norm", "aten.linalg_vector_norm.default", lambda x: torch.linalg.vector_norm(x, dim=-1), S4),
    op("vector_norm_all_dims", "aten.linalg_vector_norm.default", lambda x: x / torch.linalg.vector_norm(x), S4),
    op("vector_norm_l1", "aten.linalg_vector_norm.default", lambda x: torch.linalg.vector_norm(x, 1, (1, 2)), S4),
    op(
        "vector_norm_inf", "aten.linalg_vector_norm.default", lambda x: torch.linalg.vector_norm(x, float("inf"), 1), S4
    ),
    op("vector_norm_p3", "aten.linalg_vector_norm.default", lambda x: torch.linalg.vector_norm(x, 3, 1, True), S4),
    op("cumsum", "aten.cumsum.default", lambda x: x.cumsum(1), S4),
    op("cumsum_int", "aten.cumsum.default", lambda i: i.cumsum(-1), ((SEQ,), "i2")),
    # normalization
    Op("layer_norm", ("aten.native_layer_norm.default",), lambda: torch.nn.LayerNorm(4), [S4]),
    Op("layer_norm_2d", ("aten.native_layer_norm.default",), lambda: torch.nn.LayerNorm([3, 4]), [((3, 4), "f")]),
    Op("batch_norm", ("aten._native_batch_norm_legit_no_training.default",), lambda: _bn(), [((3, 5, 5), "f")]),
    Op("group_norm", ("aten.native_group_norm.default",), lambda: torch.nn.GroupNorm(2, 4), [((4, SEQ), "f")]),
    # convolution and pooling
    Op("conv2d", ("aten.convolution.default",), lambda: torch.nn.Conv2d(3, 4, 3), [((3, 7, 7), "f")]),
    Op(
        "conv2d_stride_pad_dilation",
        ("aten.convolution.default",),
        lambda: torch.nn.Conv2d(3, 4, (3, 2), stride=2, padding=(1, 2), dilation=(2, 1)),
        [((3, 9, 8), "f")],
    ),
    Op(
        "conv2d_groups",
        ("aten.convolution.default",),
        lambda: torch.nn.Conv2d(4, 6, 3, padding=1, groups=2),
        [((4, 6, 6), "f")],
    ),
    Op(
        "conv2d_depthwise",
        ("aten.convolution.default",),
        lambda: torch.nn.Conv2d(4, 4, 3, groups=4, bias=False),
        [((4, 6, 6), "f")],
    ),
    Op(
        "conv1d_dynamic_length",
        ("aten.convolution.default",),
        lambda: torch.nn.Conv1d(3, 5, 3, stride=2, padding=1),
        [((3, SEQ), "f")],
    ),
    Op(
        "max_pool2d", ("aten.max_pool2d_with_indices.default",), lambda: torch.nn.MaxPool2d(3, 2, 1), [((2, 9, 9), "f")]
    ),
    Op(
        "max_pool2d_ceil",
        ("aten.max_pool2d_with_indices.default",),
        lambda: torch.nn.MaxPool2d(2, ceil_mode=True),
        [((2, 7, 7), "f")],
    ),
    Op(
        "avg_pool2d",
        ("aten.avg_pool2d.default",),
        lambda: torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        [((2, 8, 8), "f")],
    ),
    Op("avg_pool2d_plain", ("aten.avg_pool2d.default",), lambda: torch.nn.AvgPool2d(2), [((2, 8, 8), "f")]),
    Op(
        "adaptive_avg_pool2d",
        ("aten._adaptive_avg_pool2d.default",),
        lambda: torch.nn.AdaptiveAvgPool2d(2),
        [((2, 8, 8), "f")],
    ),
    # indexing
    Op("embedding", ("aten.embedding.default",), lambda: torch.nn.Embedding(9, 3), [((SEQ,), "i9")]),
    Op(
        "index_select",
        ("aten.index_select.default",),
        fn(lambda self, x: x.index_select(1, self.c0), torch.tensor([3, 0, 0, 5])),
        [F6],
    ),
    op("gather", "aten.gather.default", lambda x, i: torch.gather(x, 1, i), F6, ((4,), "i6")),
    op("take_along_seq", "aten.gather.default", lambda x, i: torch.gather(x, 1, i), S4, ((SEQ, 2), "i2")),
    op("index_by_tensor", "aten.index.Tensor", lambda x, i: x[torch.arange(x.shape[0])[:, None], i], F6, ((3,), "i6")),
    Op(
        "index_buffer", ("aten.index.Tensor",), fn(lambda self, x: x[:, self.c0], torch.tensor([[1, -1], [0, 2]])), [F6]
    ),
    Op(
        "index_two_axes",
        ("aten.index.Tensor",),
        fn(lambda self, x: x[:, self.c0, self.c1], torch.tensor([0, 2, 1]), torch.tensor([3, 3, 0])),
        [((3, 4), "f")],
    ),
    # creation
    op("full", "aten.full.default", lambda x: torch.zeros(x.shape[0], x.shape[1], 2) + x[..., :1], S4),
    op("ones_like", "aten.full_like.default", lambda x: torch.ones_like(x) * x.sum(), S4),
    op("arange", "aten.arange.start_step", lambda x: x + torch.arange(x.shape[1])[None, :, None], S4),
    op("arange_float", "aten.arange.start_step", lambda x: x * torch.arange(0.5, 3.5, 0.5)),
    op("scalar_tensor", ("aten.scalar_tensor.default",), lambda x: torch.where(x > 0.5, 2.0, x)),
]


def _bn() -> torch.nn.Module:
    bn = torch.nn.BatchNorm2d(3)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    return bn.eval()


def _draw(shape: tuple[int, ...], kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "f":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "p":
        return rng.uniform(0.5, 2.0, shape).astype(np.float32)
    if kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(0, int(kind[1:]), shape, dtype=np.int64)


CASES = ((1, 5), (3, 9), (8, 5))  # (batch, sequence length)


def _cases(spec: Op, seed: int) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        f"batch {rows} seq {length}": {
            f"x{i}": _draw((rows, *(length if d == SEQ else d for d in shape)), kind, rng)
            for i, (shape, kind) in enumerate(spec.inputs)
        }
        for rows, length in CASES
    }


@dataclass
class Prepared:
    spec: Op
    targets: list[str]
    want: dict[str, dict[str, np.ndarray]]
    task: dict[str, Any]
    out: Path


def _prepare(spec: Op, root: Path, seed: int) -> Prepared:
    torch.manual_seed(seed)
    module = spec.make().eval()
    example = tuple(torch.from_numpy(v) for v in _cases(spec, seed + 1)["batch 3 seq 9"].values())
    # Dim.DYNAMIC on the sequence: a slice such as x[:, 1:-1] makes torch guard on its length, which
    # a named Dim refuses (Constraints violated) while DYNAMIC keeps the axis symbolic and checks it at run time
    batch, seq = torch.export.Dim("batch", min=1, max=64), torch.export.Dim.DYNAMIC
    shapes = tuple({0: batch, **{i + 1: seq for i, d in enumerate(s) if d == SEQ}} for s, _ in spec.inputs)
    cases = _cases(spec, seed)
    with torch.inference_mode():
        first = module(*(torch.from_numpy(v) for v in cases["batch 1 seq 5"].values()))
    dtype = str(first.dtype).removeprefix("torch.")
    contract = entry(
        [(f"x{i}", t) for i, t in enumerate(example)],
        ["y"],
        dynamic={f"x{i}": [j for j, d in enumerate(s) if d == SEQ] for i, (s, _) in enumerate(spec.inputs)},
        output_dtypes=[dtype],
    )
    work = root / spec.name
    work.mkdir()
    # Fn.forward takes *args: its dynamic shapes are one tuple, for that one parameter
    dynamic = (shapes,) if isinstance(module, Fn) else shapes
    graph = to_graph(export(module, example, dynamic, work / "op.pt2"), contract, work / "graph")
    inputs = write_cases(work / "in.npz", cases)
    task = {
        "op": "run_graph",
        "graph": str(work / "graph"),
        "contract": contract.model_dump_json(),
        "inputs": inputs,
        "out": str(work / "out.npz"),
    }
    return Prepared(spec, graph["targets"], reference(module, contract, cases), task, work / "out.npz")


@pytest.fixture(scope="module")
def lowered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every op exported and written here, then lowered and run in one TF worker job."""
    root = tmp_path_factory.mktemp("ops")
    prepared: dict[str, Prepared | str] = {}
    for seed, spec in enumerate(OPS):
        try:
            prepared[spec.name] = _prepare(spec, root, seed)
        except Exception as exc:  # noqa: BLE001 - that op's test fails with it; the others still run
            prepared[spec.name] = f"torch side: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    # a job stops at its first failure: run the rest again after it, so each op gets its own answer
    pending = [name for name, p in prepared.items() if isinstance(p, Prepared)]
    errors: dict[str, str] = {}
    while pending:
        answer = tf_job(root / f"job-{len(errors)}", [prepared[n].task for n in pending])  # type: ignore[union-attr]
        if answer["ok"]:
            break
        failed = pending[len(answer["results"])]
        errors[failed] = answer["error"]
        pending = pending[len(answer["results"]) + 1 :]
    return {"prepared": prepared, "errors": errors}


def test_the_op_names_are_unique() -> None:
    names = [o.name for o in OPS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("spec", OPS, ids=[o.name for o in OPS])
def test_each_op_matches_torch_at_every_batch_and_length(lowered: dict[str, Any], spec: Op) -> None:
    prepared = lowered["prepared"][spec.name]
    assert isinstance(prepared, Prepared), prepared
    assert spec.name not in lowered["errors"], lowered["errors"][spec.name]
    missing = [t for t in spec.targets if t not in prepared.targets]
    assert not missing, f"the exported graph has no {missing} (it has {prepared.targets})"
    got = read_cases(prepared.out)
    for case, outputs in prepared.want.items():
        assert got[case]["y"].dtype == outputs["y"].dtype, case
    diffs = max_diff(got, prepared.want)
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_an_op_without_a_lowering_is_refused_by_its_name(tmp_path: Path) -> None:
    module = Fn(lambda self, x: torch.special.i0(x) + 1)
    example = (torch.randn(3, 6),)
    contract = entry([("x0", example[0])], ["y"])
    shapes = (({0: torch.export.Dim("batch", min=1, max=64)},),)
    to_graph(export(module, example, shapes, tmp_path / "op.pt2"), contract, tmp_path / "graph")
    tasks = [
        {
            "op": "from_graph",
            "graph": str(tmp_path / "graph"),
            "contract": contract.model_dump_json(),
            "out": str(tmp_path / "saved"),
        }
    ]
    answer = tf_job(tmp_path, tasks)
    assert not answer["ok"]
    assert "\n" not in answer["error"]
    assert answer["error"].startswith("the ATen lowering has no aten.i0.default (used by node i0)"), answer["error"]
    assert not (tmp_path / "saved").exists()
