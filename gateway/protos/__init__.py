"""Generated protobuf messages (``make protos``; never edited by hand): the Open Inference
Protocol's gRPC messages (``oip_v2.proto``) and the part of TF Serving's API the gateway
calls (``tf_serving.proto``).

They are generated with grpcio-tools (protobuf 7 gencode) and committed, so neither the
gateway image nor ``make up`` needs a compiler; ``tests/gateway/test_protos.py`` fails when
a ``.proto`` and its generated module disagree, and holds both to the field numbers of
tritonclient's and tensorflow-serving-api's own definitions. Each ``.proto`` says why its
package differs from the protocol's.
"""
