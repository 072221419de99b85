"""How duoserve is built and started: ``make artifacts`` (:mod:`stack.build`) and ``make up`` (:mod:`stack.native`).

Above the services and the gateway, below the load tests: it builds the artifacts both
serving stacks read (the built-in models are :mod:`stack.builtins`), starts TorchServe,
the TF server and the gateway natively, and writes ``stack.json`` for everything above.
"""
