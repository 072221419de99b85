"""The whole native stack (TorchServe, TF server, gateway) for integration tests, on free ports.

The stack on free ports is the project's own (:mod:`stack.scratch`, which the zoo runner uses too).
"""

from __future__ import annotations

from stack.scratch import SERVICES, Stack, running_stack

__all__ = ["SERVICES", "Stack", "running_stack"]
