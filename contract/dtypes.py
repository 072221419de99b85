"""The contract's dtypes, and how each one is held and travels: duoserve's one dtype table.

One row per dtype a manifest may name (:data:`contract.manifest.DType`); every codec reads
its column here: the JSON checks (:mod:`contract.tensors`), the Open Inference Protocol
(:mod:`contract.oip`, the gateway's v2 gRPC service) and TF Serving's gRPC messages (the
gateway's TF client). A dtype missing from a column is a refusal, never a guess.

=========  =======  ==========  =====================  =======  ===============  =========  ===========
dtype      numpy    JSON kinds  a wrong leaf is        OIP      OIP gRPC         TF enum    TF values
=========  =======  ==========  =====================  =======  ===============  =========  ===========
float32    float32  f i u       non-numeric            FP32     fp32_contents    1          float_val
float16    float16  f i u       non-numeric            FP16     (raw bytes only) 19         half_val
int64      int64    i u         non-integer            INT64    int64_contents   9          int64_val
int32      int32    i u         non-integer            INT32    int_contents     3          int_val
bool       bool_    b           non-boolean            BOOL     bool_contents    10         bool_val
=========  =======  ==========  =====================  =======  ===============  =========  ===========

Like the rest of the package, it imports numpy and the standard library only (a copy
travels in every ``.mar``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DTypeInfo:
    """One dtype of the contract and its name in each place it goes."""

    name: str
    #: the numpy scalar type of its arrays
    numpy: type[np.generic]
    #: numpy kinds a JSON value may parse to and still be read as this dtype ("b" bool, "i"/"u" int, "f" float)
    kinds: str
    #: how an error calls a JSON leaf this dtype cannot take ("non-numeric value at instances[0][3]")
    wrong: str
    #: the Open Inference Protocol's datatype
    datatype: str
    #: where the protocol's gRPC ``InferTensorContents`` holds its elements (None: raw bytes only)
    contents: str | None
    #: ``tensorflow.DataType`` number in TF Serving's TensorProto
    tf_enum: int
    #: where a TensorProto without ``tensor_content`` holds its values
    tf_values: str

    @property
    def family(self) -> str:
        """``float``, ``int`` or ``bool``."""
        return "float" if "f" in self.kinds else ("bool" if self.kinds == "b" else "int")


DTYPES: dict[str, DTypeInfo] = {
    d.name: d
    for d in (
        DTypeInfo("float32", np.float32, "fiu", "non-numeric", "FP32", "fp32_contents", 1, "float_val"),
        DTypeInfo("float16", np.float16, "fiu", "non-numeric", "FP16", None, 19, "half_val"),
        DTypeInfo("int64", np.int64, "iu", "non-integer", "INT64", "int64_contents", 9, "int64_val"),
        DTypeInfo("int32", np.int32, "iu", "non-integer", "INT32", "int_contents", 3, "int_val"),
        DTypeInfo("bool", np.bool_, "b", "non-boolean", "BOOL", "bool_contents", 10, "bool_val"),
    )
}
#: dtype -> numpy scalar type
NUMPY_DTYPES: dict[str, type[np.generic]] = {name: d.numpy for name, d in DTYPES.items()}
#: Open Inference Protocol datatype -> the contract's dtype
BY_DATATYPE: dict[str, DTypeInfo] = {d.datatype: d for d in DTYPES.values()}
#: ``tensorflow.DataType`` number -> the contract's dtype
BY_TF_ENUM: dict[int, DTypeInfo] = {d.tf_enum: d for d in DTYPES.values()}
