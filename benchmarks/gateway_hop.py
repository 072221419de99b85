"""Gateway overhead in front of the real TorchServe: ``python -m benchmarks.gateway_hop``.

Needs a running stack (``make up``; reads ``$STACK_RUN_DIR/stack.json``). For one model
(default ``mlp``, one instance per request) it drives, with ``wrk``, TorchServe directly
(with the inference key) and the gateway with ``X-Backend: torch``, interleaved in each
repeat so both see the same machine: p50/p99 at 1 connection and req/s at 16. Prints
min/median/max over the repeats and the ratios of the medians. Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from contract.keys import read_key
from contract.stackinfo import StackInfo
from loadtests import payload, wrk


def _cell(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main(argv: list[str] | None = None) -> int:
    """Run the interleaved measurements and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway_hop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--stack", type=Path, default=Path(os.environ.get("STACK_RUN_DIR", ".run")) / "stack.json")
    args = parser.parse_args(argv)
    info = StackInfo.read(args.stack)
    key = read_key(info.torch_key_file)
    body = payload.body(payload.load_model(args.model, info.artifacts), 1, seed=0)
    targets = {
        "TorchServe direct": (f"{info.torch}/predictions/{args.model}", {"Authorization": f"Bearer {key}"}),
        "gateway -> TorchServe": (f"{info.gateway}/v1/models/{args.model}/predict", {"X-Backend": "torch"}),
    }
    results: dict[tuple[str, int], list[wrk.WrkResult]] = {}
    for url, headers in targets.values():
        wrk.run(url, body, connections=4, duration_s=2, headers=headers)  # warm-up
    for repeat in range(args.repeats):
        for connections in (1, args.connections):
            for name, (url, headers) in targets.items():
                threads = 2 if connections > 1 else 1
                result = wrk.run(url, body, connections=connections, duration_s=args.duration, headers=headers,
                                 threads=threads)  # fmt: skip
                if result.non_2xx or result.socket_errors:
                    print(f"{name}: {result.non_2xx} non-2xx, {result.socket_errors} socket errors", file=sys.stderr)
                    return 1
                results.setdefault((name, connections), []).append(result)
                print(f"repeat {repeat + 1} c={connections:<3} {name:22} {result.rps:8.0f} req/s  "
                      f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms", flush=True)  # fmt: skip
    print(
        f"\nmodel {args.model}, {args.duration:.0f} s x {args.repeats}, cells min / median / max, "
        f"load average {os.getloadavg()}"
    )
    print("| target | connections | req/s | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |")
    for (name, connections), runs in results.items():
        print(f"| {name} | {connections} | {_cell([r.rps for r in runs])} | "
              f"{_cell([r.p50_ms for r in runs])} | {_cell([r.p99_ms for r in runs])} |")  # fmt: skip
    names = list(targets)

    def median(name: str, connections: int, field: str) -> float:
        return float(statistics.median(float(getattr(r, field)) for r in results[(name, connections)]))

    added = median(names[1], 1, "p50_ms") - median(names[0], 1, "p50_ms")
    ratio = median(names[1], args.connections, "rps") / median(names[0], args.connections, "rps")
    print(f"\nadded p50 at 1 connection: {added:.2f} ms; throughput at {args.connections}: {ratio:.0%} of direct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
