"""What the example builders share: recording what a converter says, nobuco's SavedModel, torchvision.

Imported by the builders in the main venv and by the TF sides in the nobuco venv, so it
imports nothing at module level but the standard library.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import types
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: torchvision's wheel, unzipped (its compiled ops need CUDA torch; the model code is pure Python)
TORCHVISION = "torchvision==0.28.0"
CACHE = REPO / ".cache"


def attempt(fn: Callable[[], Any]) -> str:
    """``"ok"``, or what the call raised (type and first line): how a converter refuses."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - recording the converter's own words is the point
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # torch.onnx colours its messages
        first = text.splitlines()[0] if text else ""
        return f"{type(exc).__name__}: {first}"[:400]
    return "ok"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Exporters' warnings and progress lines off (the build log keeps what matters)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch").setLevel(logging.ERROR)
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            yield


def torchvision() -> types.ModuleType:
    """torchvision's model code with this CPU torch.

    PyPI's torchvision wheels link CUDA torch: their compiled ops fail to load here
    (``operator torchvision::nms does not exist``). The models are pure Python, so the wheel
    is unzipped into ``.cache/`` (a package download, no weights) and imported with its two
    op-registration modules replaced by empty ones.
    """
    target = CACHE / TORCHVISION.replace("==", "-")
    if not (target / "torchvision" / "__init__.py").exists():
        wheels = CACHE / "wheels"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", TORCHVISION,
             "-d", str(wheels)],
            check=True,
        )  # fmt: skip
        wheel = next(wheels.glob("torchvision-0.28.0-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules.setdefault(name, types.ModuleType(name))
    import torchvision.models

    return torchvision


def nobuco_savedmodel(model: Any, inputs: dict[str, tuple[Any, tuple[int | None, ...]]], outputs: list[str],
                      path: Path) -> None:  # fmt: skip
    """torch module -> Keras 2 (nobuco) -> SavedModel whose signature takes and returns the torch names.

    ``inputs``: name -> (an example tensor, the shape with None on dynamic axes). Layouts are
    kept as torch has them (``ChannelOrder.PYTORCH``): the TF side takes the same bytes.
    Runs in the nobuco venv (TensorFlow 2.15, Keras 2).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _torchvision_nms()  # nobuco registers a converter for torchvision::nms when it is imported
    import nobuco
    import tensorflow as tf
    from nobuco import ChannelOrder

    args = [tensor for tensor, _ in inputs.values()]
    keras_model = nobuco.pytorch_to_keras(
        model,
        args=args,
        input_shapes={tensor: shape for tensor, shape in inputs.values()},
        inputs_channel_order=ChannelOrder.PYTORCH,
        outputs_channel_order=ChannelOrder.PYTORCH,
        input_names={tensor: name for name, (tensor, _) in inputs.items()},
        output_names=dict(enumerate(outputs)),
        trace_shape=True,
    )
    specs = [
        tf.TensorSpec(shape, tf.as_dtype(str(tensor.dtype).removeprefix("torch.")), name=name)
        for name, (tensor, shape) in inputs.items()
    ]

    @tf.function(input_signature=specs)
    def serve(*args: Any) -> dict[str, Any]:
        found = keras_model(list(args) if len(args) > 1 else args[0], training=False)
        values = found if isinstance(found, (list, tuple)) else [found]
        return dict(zip(outputs, values, strict=True))

    tf.saved_model.save(keras_model, str(path), signatures={"serving_default": serve})


_LIBRARY: Any = None


def _torchvision_nms() -> None:
    """torchvision importable, and ``torchvision::nms`` defined (its kernel raises): nobuco needs both."""
    global _LIBRARY
    import torch

    torchvision()
    if _LIBRARY is None and not hasattr(torch.ops.torchvision, "nms"):
        _LIBRARY = torch.library.Library("torchvision", "DEF")
        _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")

        def unavailable(dets: Any, scores: Any, iou_threshold: float) -> Any:
            raise NotImplementedError("torchvision::nms is not available with this torch build")

        _LIBRARY.impl("nms", unavailable, "CPU")
