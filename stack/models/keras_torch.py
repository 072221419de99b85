"""A ``.keras`` file to TorchServe's artifact through Keras 3's torch backend: Keras itself is the converter.

Runs as ``KERAS_BACKEND=torch python -m stack.models.keras_torch JOB.json`` (see
:mod:`services.jobs`): with the torch backend, a loaded Keras model is a
``torch.nn.Module``; it is traced into TorchScript, or exported with ``torch.export``
when tracing does not reproduce it (:func:`services.torch_api.convert.save_torch`). It
lives here, not in ``services/torch_api``, because it needs Keras and torch in one process
and torch_api never imports Keras.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from services.jobs import StepError, Task, main


def from_keras(task: Task) -> dict[str, Any]:
    """Load the ``.keras`` file with the torch backend and save it for TorchServe."""
    if os.environ.get("KERAS_BACKEND") != "torch":
        raise StepError("from_keras runs with KERAS_BACKEND=torch")
    import keras
    import torch

    from contract.manifest import ModelEntry
    from services.torch_api.convert import Ordered, cases_of, save_torch

    entry = ModelEntry.model_validate_json(task["contract"])
    model = keras.models.load_model(task["keras"], compile=False)
    keras_inputs = [t.name.split(":")[0] for t in model.inputs]
    # keras.applications models name their input "keras_tensor": then the order is the contract's
    named = sorted(keras_inputs) == sorted(entry.input_names)
    positions = [entry.input_names.index(n) for n in keras_inputs] if named else list(range(len(keras_inputs)))

    class Keras(torch.nn.Module):
        """The Keras model, called as Keras calls it (a list for several inputs)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> Any:
            return self.model(list(args) if len(args) > 1 else args[0], training=False)

    module = Ordered(Keras(), positions, list(range(len(entry.outputs))))
    cases = cases_of(entry, task["example"])
    return save_torch(module, entry, cases, Path(task["out_dir"]), program=bool(task.get("export")))


if __name__ == "__main__":
    sys.exit(main({"from_keras": from_keras}))
