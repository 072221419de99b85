"""Message classes for TF Serving's batching and monitoring config files.

``tensorflow-serving-api`` ships ``model_server_config_pb2`` but not
``session_bundle_config_pb2`` (BatchingParameters) nor ``monitoring_config_pb2``, so
the few fields we read are declared here with the same names, numbers and types as
TF Serving's .proto files; ``text_format`` then parses the very files the binary reads.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

_FIELD = descriptor_pb2.FieldDescriptorProto


def _field(
    name: str, number: int, type_name: str | None = None, scalar: int | None = None, repeated: bool = False
) -> Any:
    field = _FIELD(name=name, number=number)
    field.label = _FIELD.LABEL_REPEATED if repeated else _FIELD.LABEL_OPTIONAL
    if type_name is not None:
        field.type = _FIELD.TYPE_MESSAGE
        field.type_name = type_name
    else:
        field.type = scalar if scalar is not None else _FIELD.TYPE_INT64
    return field


def _build() -> tuple[Any, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    proto = descriptor_pb2.FileDescriptorProto(
        name="duoserve/tf_serving_configs.proto", package="duoserve.tfs", dependency=["google/protobuf/wrappers.proto"]
    )
    int64 = ".google.protobuf.Int64Value"
    batching = proto.message_type.add(name="BatchingParameters")
    batching.field.extend(
        [
            _field("max_batch_size", 1, int64),
            _field("batch_timeout_micros", 2, int64),
            _field("max_enqueued_batches", 3, int64),
            _field("num_batch_threads", 4, int64),
            _field("thread_pool_name", 5, ".google.protobuf.StringValue"),
            _field("allowed_batch_sizes", 6, scalar=_FIELD.TYPE_INT64, repeated=True),
            _field("pad_variable_length_inputs", 7, scalar=_FIELD.TYPE_BOOL),
            _field("enable_large_batch_splitting", 8, ".google.protobuf.BoolValue"),
            _field("max_execution_batch_size", 9, int64),
        ]
    )
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.extend(
        [_field("enable", 1, scalar=_FIELD.TYPE_BOOL), _field("path", 2, scalar=_FIELD.TYPE_STRING)]
    )
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.append(_field("prometheus_config", 1, ".duoserve.tfs.PrometheusConfig"))
    pool.Add(proto)
    get = message_factory.GetMessageClass
    return (
        get(pool.FindMessageTypeByName("duoserve.tfs.BatchingParameters")),
        get(pool.FindMessageTypeByName("duoserve.tfs.MonitoringConfig")),
    )


BatchingParameters, MonitoringConfig = _build()
