"""Triton python-backend model for every duoserve model: TorchScript, a torch.export program or ONNX.

Generic, like TorchServe's handler: :mod:`services.triton_api.repository` copies this file
into ``<repository>/<model>/1/model.py`` beside ``model.json`` (the model's manifest entry)
and the artifact, and names the artifact in ``config.pbtxt``'s parameters. The artifact is
loaded by the TorchServe handler's own loaders (:class:`services.torch_api.handler.DuoserveHandler`),
so both servers run the same runtime with the same device and precision rules; the file's
suffix decides (``.pt`` TorchScript, ``.pt2`` torch.export, ``.onnx`` ONNX Runtime).

Triton starts this file in its python-backend stub, an isolated embedded interpreter: natively,
the launcher's backend directory has already put the venv and the repository root on its
``sys.path`` (:mod:`services.triton_api.launcher`); the image installs what it needs. Each
request's tensors are checked against the contract by :mod:`contract.oip` (datatypes, shapes,
NaN and infinities, the max batch), as the gateway and the TorchServe handler check them; a
bad one gets its own ``INVALID_ARG`` error (HTTP 400). The requests of a dynamic batch whose
tensors share their shapes are stacked, run once and split back. Tensors cross the stub by
DLPack, never its numpy bridge (built against numpy 1's ABI, it misreads numpy 2's arrays).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: config.pbtxt parameters this model reads (:mod:`services.triton_api.repository` writes them)
ARTIFACT_PARAMETER = "artifact"
THREADS_PARAMETER = "intra_op_threads"


def _parameters(config: dict[str, Any]) -> dict[str, str]:
    return {key: str(value.get("string_value", "")) for key, value in (config.get("parameters") or {}).items()}


class TritonPythonModel:
    """The python backend's model class: ``initialize``, ``execute``, ``finalize``."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the artifact named by the config on this instance's device, with its intra-op threads."""
        config = json.loads(args["model_config"])
        parameters = _parameters(config)
        from contract.manifest import ModelEntry
        from services.torch_api.handler import DuoserveHandler

        version_dir = Path(args["model_repository"]) / args["model_version"]
        entry = ModelEntry.model_validate_json((version_dir / "model.json").read_text())
        artifact = version_dir / parameters[ARTIFACT_PARAMETER]
        threads = int(parameters.get(THREADS_PARAMETER) or 1)
        gpu_id = args.get("model_instance_device_id") if args.get("model_instance_kind") == "GPU" else None
        loader = DuoserveHandler()
        loader.entry = entry
        load = loader._load_onnx if artifact.suffix == ".onnx" else loader._load_torch
        self.run = load(artifact, gpu_id, threads)
        self.entry = entry
        self.runtime = f"{loader.runtime} on {loader.device}, {threads} intra-op thread(s)"
        print(f"duoserve: {args['model_name']} loaded: {self.runtime}", flush=True)

    def execute(self, requests: list[Any]) -> list[Any]:
        """One response per request, in order: its own rows of the batch, or its own error."""
        import numpy as np
        import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]  # the stub's module

        from contract.oip import check_inputs, datatype, tensor_from_bytes
        from contract.tensors import InputError

        responses: list[Any] = [None] * len(requests)
        groups: dict[tuple[tuple[int, ...], ...], list[tuple[int, dict[str, Any], int]]] = {}
        for idx, request in enumerate(requests):
            try:
                arrays = {}
                for spec in self.entry.inputs:
                    tensor = pb_utils.get_input_tensor_by_name(request, spec.name)
                    if tensor is None:
                        raise InputError(f"missing input {spec.name}")
                    # DLPack both ways, never the stub's numpy bridge: the stub is built against numpy 1's
                    # ABI and misreads a numpy 2 array's item size ("output tensor shape does not match")
                    array = np.ascontiguousarray(np.from_dlpack(tensor))
                    raw = memoryview(array).cast("B")  # type: ignore[arg-type]  # no copy
                    arrays[spec.name] = tensor_from_bytes(spec, datatype(spec), list(array.shape), raw, self.entry)
                checked, rows = check_inputs(arrays, self.entry)
            except InputError as exc:
                error = pb_utils.TritonError(exc.message, pb_utils.TritonError.INVALID_ARG)
                responses[idx] = pb_utils.InferenceResponse(output_tensors=[], error=error)
                continue
            key = tuple(tuple(a.shape[1:]) for a in checked.values())
            groups.setdefault(key, []).append((idx, checked, rows))
        for group in groups.values():
            try:
                merged = {n: np.concatenate([arrays[n] for _, arrays, _ in group]) for n in self.entry.input_names}
                outputs = self.run(merged)
            except Exception as exc:  # noqa: BLE001 -- one failed batch answers its own requests, the model stays
                for idx, _, _ in group:
                    error = pb_utils.TritonError(f"inference failed: {type(exc).__name__}: {exc}")
                    responses[idx] = pb_utils.InferenceResponse(output_tensors=[], error=error)
                continue
            offset = 0
            for idx, _, rows in group:
                tensors = [
                    pb_utils.Tensor.from_dlpack(name, np.ascontiguousarray(outputs[name][offset : offset + rows]))
                    for name in self.entry.output_names
                ]
                responses[idx] = pb_utils.InferenceResponse(output_tensors=tensors)
                offset += rows
        return responses

    def finalize(self) -> None:
        """Nothing to release: the runtime goes with the stub's process."""
