"""The gateway's generated protobuf modules: in step with their .proto files, and wire-compatible.

The modules are committed (``make protos``). Their messages live in their own packages
(see each .proto), so what must agree with tritonclient's Open Inference Protocol messages
and with tensorflow-serving-api's is every field the gateway's messages declare: number,
name, type and cardinality. A field they leave out is one the gateway never reads.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor
from tritonclient.grpc import service_pb2

from gateway.protos import oip_v2_pb2, tf_serving_pb2
from tests.utils.servers import REPO

PROTOS = ("gateway/protos/oip_v2.proto", "gateway/protos/tf_serving.proto")


def test_generated_modules_match_their_proto_files(tmp_path: Path) -> None:
    out = [f"--python_out={tmp_path}", f"--pyi_out={tmp_path}"]
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", ".", *out, *PROTOS], cwd=REPO, check=True, timeout=60
    )
    for proto in PROTOS:
        for suffix in ("_pb2.py", "_pb2.pyi"):
            generated = proto.removesuffix(".proto") + suffix
            assert (tmp_path / generated).read_text() == (REPO / generated).read_text(), (
                f"run `make protos`: {generated}"
            )


def _fields(message: Descriptor) -> dict[int, tuple[str, int, bool]]:
    """Field number -> (name, wire-relevant type, repeated); enums count as int32 on the wire."""
    enum, int32 = 14, 5
    return {f.number: (f.name, int32 if f.type == enum else f.type, f.is_repeated) for f in message.fields}


def _agree(ours: Descriptor, theirs: Descriptor) -> None:
    mine, reference = _fields(ours), _fields(theirs)
    for number, field in mine.items():
        assert reference.get(number) == field, f"{ours.full_name} field {number}: {field} vs {reference.get(number)}"
    for nested in ours.nested_types:
        if not nested.GetOptions().map_entry:
            _agree(nested, theirs.nested_types_by_name[nested.name])


def test_open_inference_messages_are_tritonclients() -> None:
    names = list(oip_v2_pb2.DESCRIPTOR.message_types_by_name)
    assert len(names) == 14
    for name in names:
        _agree(oip_v2_pb2.DESCRIPTOR.message_types_by_name[name], service_pb2.DESCRIPTOR.message_types_by_name[name])
    methods = {m.name: (m.input_type.name, m.output_type.name) for m in oip_v2_pb2.DESCRIPTOR.services_by_name[
        "GRPCInferenceService"].methods}  # fmt: skip
    triton = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service_pb2.DESCRIPTOR.package == "inference"
    for name, types in methods.items():
        method = triton.methods_by_name[name]
        assert (method.input_type.name, method.output_type.name) == types


@pytest.mark.slow  # imports TensorFlow
def test_tf_serving_subset_matches_tensorflow_serving_api() -> None:
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
    from tensorflow_serving.apis import get_model_status_pb2, model_pb2, predict_pb2, status_pb2

    pairs: list[tuple[Any, Any]] = [
        (tf_serving_pb2.TensorProto, tensor_pb2.TensorProto),
        (tf_serving_pb2.TensorShapeProto, tensor_shape_pb2.TensorShapeProto),
        (tf_serving_pb2.ModelSpec, model_pb2.ModelSpec),
        (tf_serving_pb2.PredictRequest, predict_pb2.PredictRequest),
        (tf_serving_pb2.PredictResponse, predict_pb2.PredictResponse),
        (tf_serving_pb2.GetModelStatusRequest, get_model_status_pb2.GetModelStatusRequest),
        (tf_serving_pb2.GetModelStatusResponse, get_model_status_pb2.GetModelStatusResponse),
        (tf_serving_pb2.ModelVersionStatus, get_model_status_pb2.ModelVersionStatus),
        (tf_serving_pb2.StatusProto, status_pb2.StatusProto),
    ]
    for ours, theirs in pairs:
        _agree(ours.DESCRIPTOR, theirs.DESCRIPTOR)
    states = {v.name: v.number for v in tf_serving_pb2.ModelVersionStatus.State.DESCRIPTOR.values}
    assert states == {v.name: v.number for v in get_model_status_pb2.ModelVersionStatus.State.DESCRIPTOR.values}
    from tensorflow.core.framework import types_pb2

    for value in tf_serving_pb2.DataType.DESCRIPTOR.values:
        assert types_pb2.DataType.Value(value.name) == value.number
