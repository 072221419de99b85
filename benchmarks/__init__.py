"""Benchmarks, not tests: each module is a command whose figures go to ``docs/`` with machine, versions and spread.

* ``python -m benchmarks.torchserve`` -- TorchServe's default against duoserve's configuration;
* ``python -m benchmarks.tf_server`` -- the TF server over REST and gRPC, batching on and off;
* ``python -m benchmarks.gateway_proxy`` -- the gateway in front of a trivial backend, per HTTP client;
* ``python -m benchmarks.gateway_hop`` -- the gateway in front of the real TorchServe of a running stack;
* ``python -m benchmarks.gateway_micro`` -- the gateway's own per-request steps, in-process;
* ``python -m benchmarks.frameworks`` -- the frameworks themselves, in process: training and inference
  speed of the same networks in PyTorch and TensorFlow (``docs/frameworks.md``).
* ``python -m benchmarks.protocols`` -- JSON against binary tensors through the gateway (v1, v2 REST, v2 gRPC).
* ``python -m benchmarks.torch_cuda`` -- the served PyTorch artifacts on a GPU against their CPU answers.

The top layer: it may use everything below it, and nothing imports it (the gateway image
ships none of it).
"""
