"""Where the time goes: one target's mean client latency split into the hops and stages it crossed.

Sources, all means per request over the same measurement (means add up, percentiles do not):

- the client: the load generator's latency (HdrHistogram mean of every request);
- the gateway: its ``Server-Timing`` on every answer, ``gateway;dur`` (its own work) and
  ``backend;dur`` (its call to the backend, as the gateway saw it);
- the server: its metrics (:mod:`loadtests.servermetrics`): total time inside the server,
  queue and batching wait, handler pre-processing, inference, framework compute and
  post-processing.

Parts measured directly: the gateway's own work, the queue, the handler's stages and the
framework compute. Parts measured *by difference* between two measured totals (a caller's
view minus its callee's): client ↔ gateway (or client ↔ server for a direct target),
gateway → backend, and the server's own overhead outside the handler (TorchServe's
frontend and its hop to the Python worker; the TF server's event loop). When every source
is present the parts sum to the client latency; a source that is missing leaves its share
*unaccounted*, and the breakdown says how much. A part measured by difference that comes out
negative by more than ``TOLERANCE`` of the client latency means two sources disagree, and
the breakdown says that too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TOLERANCE = 0.10
#: (key, label, how it is measured)
PARTS: list[tuple[str, str, str]] = [
    (
        "client_hop",
        "client ↔ first hop (gateway, or the server when direct)",
        "client latency − the gateway's total (Server-Timing), or − the server's total",
    ),
    ("gateway", "gateway's own work", "Server-Timing gateway;dur"),
    ("backend_hop", "gateway → backend", "Server-Timing backend;dur − server total"),
    ("queue", "server queue and batching wait", "server metrics"),
    ("pre", "handler pre-processing", "server metrics"),
    ("inference", "handler inference (outside the framework)", "server metrics: inference − compute"),
    ("compute", "framework compute", "server metrics"),
    ("post", "handler post-processing", "server metrics"),
    ("server_other", "server outside the handler (frontend, IPC, event loop)", "server total − queue − handler"),
]


@dataclass
class Sources:
    """The means (ms) one target's measurement produced; None where a source was not available."""

    client_ms: float | None
    via_gateway: bool
    gateway_ms: float | None = None
    backend_ms: float | None = None
    server: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Breakdown:
    """The parts (ms, None when unmeasured), what they add up to, and what the reader must be told."""

    client_ms: float | None
    parts: dict[str, float | None]
    notes: list[str]

    @property
    def accounted_ms(self) -> float:
        return sum(v for v in self.parts.values() if v is not None)

    @property
    def unaccounted_ms(self) -> float | None:
        return None if self.client_ms is None else self.client_ms - self.accounted_ms

    @property
    def closes(self) -> bool:
        """The parts sum to the client latency within :data:`TOLERANCE`."""
        if self.client_ms is None or self.unaccounted_ms is None:
            return False
        return abs(self.unaccounted_ms) <= TOLERANCE * self.client_ms

    def to_json(self) -> dict[str, Any]:
        labels = {key: (label, how) for key, label, how in PARTS}
        return {
            "client_ms": self.client_ms,
            "parts": [
                {"key": k, "label": labels[k][0], "source": labels[k][1], "ms": v} for k, v in self.parts.items()
            ],
            "accounted_ms": self.accounted_ms,
            "unaccounted_ms": self.unaccounted_ms,
            "closes": self.closes,
            "notes": self.notes,
        }


def _sub(a: float | None, *rest: float | None) -> float | None:
    if a is None or any(r is None for r in rest):
        return None
    return a - sum(r for r in rest if r is not None)


def split(src: Sources) -> Breakdown:
    """The parts of ``src``'s client latency; see the module docstring."""
    server = src.server
    total = server.get("total")
    inference, compute = server.get("inference"), server.get("compute")
    handler = [server.get("pre"), inference, server.get("post")]
    parts: dict[str, float | None] = {}
    if src.via_gateway:
        parts["client_hop"] = _sub(src.client_ms, src.gateway_ms, src.backend_ms)
        parts["gateway"] = src.gateway_ms
        parts["backend_hop"] = _sub(src.backend_ms, total)
    else:
        parts["client_hop"] = _sub(src.client_ms, total)
    parts["queue"] = server.get("queue")
    parts["pre"] = server.get("pre")
    parts["inference"] = _sub(inference, compute) if compute is not None else inference
    parts["compute"] = compute
    parts["post"] = server.get("post")
    parts["server_other"] = _sub(total, server.get("queue"), *handler)
    notes: list[str] = []
    client = src.client_ms
    labels = {key: label for key, label, _ in PARTS}
    if client:
        for key in ("client_hop", "backend_hop", "server_other", "inference"):
            value = parts.get(key)
            if value is not None and value < -TOLERANCE * client:
                notes.append(
                    f"{labels[key]} comes out at {value:.3f} ms: its two sources disagree by more than "
                    f"{TOLERANCE:.0%} of the client latency"
                )
    missing = [labels[k] for k, v in parts.items() if v is None]
    found = Breakdown(client, parts, notes)
    if missing and found.unaccounted_ms is not None:
        notes.append(
            f"{found.unaccounted_ms:.3f} ms ({found.unaccounted_ms / client:.0%} of the client latency) unaccounted: "
            f"no measurement of {', '.join(missing)}"
            if client
            else f"no measurement of {', '.join(missing)}"
        )
    elif found.unaccounted_ms is not None and not found.closes:
        notes.append(f"the parts miss the client latency by {found.unaccounted_ms:.3f} ms")
    return found
