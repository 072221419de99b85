"""duoserve's contract: what every component agrees on, typed, read and written in one place.

* :mod:`contract.manifest` -- the models: named inputs and outputs, dtypes, dynamic axes,
  max batch, parity figures, and each artifact's path, hash and recipe;
* :mod:`contract.artifacts` -- where artifacts live, atomic writes, hashes;
* :mod:`contract.tensors` -- JSON request bodies to checked tensors and back;
* :mod:`contract.oip` -- the Open Inference Protocol's (KServe v2) tensors, JSON and binary;
* :mod:`contract.weights` -- the neutral weights file both frameworks read;
* :mod:`contract.keys` -- TorchServe's key file;
* :mod:`contract.stackinfo` -- ``stack.json``, the running stack's description;
* :mod:`contract.settings` -- how a service names a bad setting;
* :mod:`contract.latency` -- the percentile estimator of every published latency.

It imports nothing of the project and no ML framework or web stack: pydantic, numpy,
hdrhistogram and the standard library (``make lint`` checks this with import-linter). A
copy of it travels inside every TorchServe archive, so the handler reads the same
contract as the gateway. Import the modules; this package itself exports only
:data:`MAR_FILES`.
"""

#: The modules of this package that travel inside a TorchServe archive: those the handler
#: imports (the export copies them; the build hashes them into the archive's recipe).
MAR_FILES = ("__init__.py", "artifacts.py", "dtypes.py", "manifest.py", "oip.py", "tensors.py")
