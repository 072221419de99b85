"""A lowering of torch.export's core ATen opset into TensorFlow.

:mod:`.registry` holds the op table (``@lowers("aten.add.Tensor")``), one family per module
(:mod:`.elementwise`, :mod:`.matmul`, :mod:`.shape`, :mod:`.reductions`, :mod:`.normalization`,
:mod:`.convolution`, :mod:`.indexing`, :mod:`.creation`, :mod:`.comparison`, :mod:`.symbolic`);
:mod:`.builder` interprets a ``graph.json`` written by :mod:`services.torch_api.aten_graph`
inside a ``tf.function`` and saves it as a SavedModel. An op not in the table is refused by name.
"""

from __future__ import annotations

from .builder import Program, check, function, load, save
from .registry import LOWERINGS, Node, lowers

__all__ = ["LOWERINGS", "Node", "Program", "check", "function", "load", "lowers", "save"]
