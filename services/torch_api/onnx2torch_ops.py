"""onnx2torch converters for the op versions that newer exporters write and onnx2torch 1.5.15 lacks.

onnx2torch's last release (1.5.15) stops at the op versions of opset 17. torch.onnx's own
exporter (``dynamo=True``, the default since torch 2.9) writes opset 18-20, so a plain CNN,
MLP or transformer exported by today's torch failed to convert here, measured on torch 2.13:

===================================  =============================================
model (exported with dynamo=True)    onnx2torch 1.5.15
===================================  =============================================
CNN with ``mean(dim=(2, 3))``        ``ReduceMean`` version 18 not implemented
MLP with ``x.reshape(n, -1)``        ``Reshape`` version 19 not implemented
``nn.TransformerEncoder``            ``Shape`` version 19 not implemented
===================================  =============================================

Each registration below uses onnx2torch's own extension point (``add_converter``) and, but
for the reductions, onnx2torch's own converter for the op's previous version: the ONNX
changelog lists the newer versions as adding element types only (bfloat16, float8, int4),
which this CPU float32/int64 path never sees. The reductions of opset 18 moved ``axes`` from
an attribute to a constant input; they are read from there. ``Reshape`` with
``allowzero=1`` (what torch's exporter writes from opset 14 on) is ``torch.reshape`` itself. Every model
converted this way still has to pass the parity gate against ONNX Runtime.
"""

from __future__ import annotations

from typing import Any

import torch

#: op -> (version onnx2torch has, newer versions whose changes are element types only)
TYPE_ONLY: dict[str, tuple[int, tuple[int, ...]]] = {
    "Cast": (13, (19, 21)),
    "Constant": (13, (19, 21)),
    "ConstantOfShape": (9, (20, 21)),
    "Equal": (13, (19,)),
    "Flatten": (13, (21,)),
    "GreaterOrEqual": (12, (16,)),
    "LessOrEqual": (12, (16,)),
    "Identity": (16, (19, 21)),
    "Shape": (15, (19, 21)),
    "Squeeze": (13, (21,)),
    "Transpose": (13, (21,)),
    "Unsqueeze": (13, (21,)),
}
#: The reductions whose ``axes`` became an input in opset 18 (ReduceSum did so in 13; onnx2torch has it).
REDUCTIONS = (
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSumSquare",
)

_registered = False


def register() -> None:
    """Add the converters to onnx2torch's registry (once per process)."""
    global _registered
    if _registered:
        return
    from onnx2torch.node_converters.reduce import OnnxReduceStaticAxes
    from onnx2torch.node_converters.registry import add_converter, get_converter
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult, get_const_value, onnx_mapping_from_node

    def add(op: str, version: int, converter: Any) -> None:
        try:
            get_converter(op, version)  # onnx2torch has it already
        except NotImplementedError:
            add_converter(operation_type=op, version=version)(converter)

    for op, (known, newer) in TYPE_ONLY.items():
        for version in newer:
            add(op, version, get_converter(op, known))

    def reduction(node: Any, graph: Any) -> Any:
        keepdims = node.attributes.get("keepdims", 1)
        axes: list[int] | None = None
        if len(node.input_values) > 1 and node.input_values[1]:
            try:
                axes = [int(a) for a in get_const_value(node.input_values[1], graph).tolist()]
            except KeyError:
                raise NotImplementedError(f"{node.operation_type} with axes computed at run time") from None
        if not axes and node.attributes.get("noop_with_empty_axes", 0):
            return OperationConverterResult(
                torch_module=torch.nn.Identity(),
                onnx_mapping=OnnxMapping(inputs=(node.input_values[0],), outputs=node.output_values),
            )
        return OperationConverterResult(
            torch_module=OnnxReduceStaticAxes(operation_type=node.operation_type, axes=axes, keepdims=keepdims),
            onnx_mapping=OnnxMapping(inputs=(node.input_values[0],), outputs=node.output_values),
        )

    for op in REDUCTIONS:
        add(op, 18, reduction)

    def replace(op: str, versions: tuple[int, ...], converter: Any) -> None:
        # onnx2torch 1.5.15 is its last release and offers no way to replace a converter but its registry
        from onnx2torch.node_converters import registry

        for version in versions:
            registry._CONVERTER_REGISTRY[registry.OperationDescription("", op, version)] = converter

    def module(factory: Any) -> Any:
        def convert(node: Any, graph: Any) -> Any:
            del graph
            return OperationConverterResult(torch_module=factory(node), onnx_mapping=onnx_mapping_from_node(node=node))

        return convert

    replace(
        "Shape", (1, 13, 15, 19, 21), module(lambda n: Shape(n.attributes.get("start", 0), n.attributes.get("end")))
    )
    replace("Reshape", (5, 13, 14, 19, 21), module(lambda n: Reshape(bool(n.attributes.get("allowzero", 0)))))
    replace("Expand", (8, 13), module(lambda n: Expand()))
    replace("ConstantOfShape", (9, 20, 21), module(lambda n: ConstantOfShape(n.attributes.get("value"))))

    def gelu(node: Any, graph: Any) -> Any:
        del graph
        approximate = node.attributes.get("approximate", "none")
        return OperationConverterResult(
            torch_module=torch.nn.GELU(approximate=approximate), onnx_mapping=onnx_mapping_from_node(node=node)
        )

    add("Gelu", 20, gelu)
    _registered = True


def _sizes(shape: torch.Tensor) -> Any:
    """A shape tensor as a list of 0-d tensors: torch.jit.trace records them as values, not constants."""
    return list(shape.unbind(0))


class Shape(torch.nn.Module):
    """ONNX Shape as a traced op (onnx2torch's builds a Python list, which tracing freezes)."""

    def __init__(self, start: int = 0, end: int | None = None) -> None:
        super().__init__()
        self.start, self.end = start, end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch._shape_as_tensor(x)[self.start : self.end]


class Reshape(torch.nn.Module):
    """ONNX Reshape; with ``allowzero=0`` a 0 copies the input's size on that axis."""

    def __init__(self, allowzero: bool) -> None:
        super().__init__()
        self.allowzero = allowzero

    def forward(self, x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        if not self.allowzero:
            rank = min(len(shape), x.dim())
            given = torch._shape_as_tensor(x)[:rank]
            head = torch.where(shape[:rank] == 0, given, shape[:rank])
            shape = torch.cat([head, shape[rank:]])
        return torch.reshape(x, _sizes(shape))


class Expand(torch.nn.Module):
    """ONNX Expand: broadcast both ways, as onnx2torch does, with the shape kept traceable."""

    def forward(self, x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return x * torch.ones(_sizes(shape), dtype=x.dtype, device=x.device)


class ConstantOfShape(torch.nn.Module):
    """ONNX ConstantOfShape with the shape kept traceable."""

    def __init__(self, value: Any = None) -> None:
        super().__init__()
        tensor = value.to_torch() if value is not None else torch.zeros(1, dtype=torch.float32)
        self.value: torch.Tensor
        self.register_buffer("value", tensor.reshape(()))

    def forward(self, shape: torch.Tensor) -> torch.Tensor:
        return torch.full(_sizes(shape), self.value.item(), dtype=self.value.dtype, device=self.value.device)
