"""``python -m loadtests.reliability {faults,overload,soak,all}``: the measured table of docs/reliability.md.

Runs against a stack started with ``python -m stack up`` (the same environment, so
``python -m stack restart`` finds the same ports); prints a Markdown table and writes every
row with its raw figures to ``--out``/reliability-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from contract.stackinfo import StackInfo, StackInfoError

from .scenarios import FAULTS, Row, capacity, fault, fixed, overload, soak

REPO = Path(__file__).resolve().parents[2]

HEADER = (
    "| test | load | fault | requests | failed | p99 before / during / after (ms) | breaker open (s) "
    "| back to steady (s) | gateway RSS start → peak (growth) | fds start → max | gateway restarted |"
)


def markdown(rows: list[Row]) -> str:
    lines = [HEADER, HEADER_RULE]
    for r in rows:
        lines.append(
            f"| {r.test} | {r.load} | {r.fault} | {r.requests} | {r.failed_ratio:.2%} "
            f"| {r.p99_before_ms:g} / {r.p99_during_ms:g} / {r.p99_after_ms:g} "
            f"| {'-' if r.breaker_open_s is None else f'{r.breaker_open_s:g}'} "
            f"| {_recovery(r)} "
            f"| {r.rss_start_mb:g} → {r.rss_peak_mb:g} MB ({r.rss_growth:+.1%}) | {r.fds[0]} → {r.fds[1]} "
            f"| {'yes' if r.gateway_restarted else 'no'} |"
        )
    return "\n".join(lines)


HEADER_RULE = "|" + " --- |" * (HEADER.count("|") - 1)


def _recovery(row: Row) -> str:
    if row.recovery_s is not None:
        return f"{row.recovery_s:g}"
    return "-" if row.test == "soak" else "not within the run"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["faults", "overload", "soak", "all"])
    parser.add_argument(
        "--stack", type=Path, default=Path(os.environ.get("STACK_RUN_DIR") or REPO / ".run") / "stack.json"
    )
    parser.add_argument("--out", type=Path, default=REPO / "reports")
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated subset of " + ",".join(FAULTS))
    parser.add_argument("--rate", type=float, default=0.0, help="fault load in req/s (default: half of capacity)")
    parser.add_argument("--during", type=float, default=10.0, help="seconds each proxy fault lasts")
    parser.add_argument("--soak-s", type=float, default=600.0)
    parser.add_argument("--soak-share", type=float, default=0.5, help="soak load as a share of capacity")
    parser.add_argument("--hedge", action="store_true", help="the fault rows with hedging (after p99, max 5 %%)")
    args = parser.parse_args(argv)
    try:
        stack = StackInfo.read(args.stack)
    except StackInfoError as exc:
        print(f"reliability: {exc}", file=sys.stderr)
        return 2
    logs = args.out / f"reliability-{time.strftime('%Y%m%d-%H%M%S')}"
    rows: list[Row] = []
    if args.what in ("faults", "all"):
        rate = args.rate
        if not rate:  # half of what the weaker backend serves alone: failover must fit on the survivor
            caps = {b: capacity(stack, logs, env={"GATEWAY_POLICIES": json.dumps(fixed(b))}) for b in ("torch", "tf")}
            rate = round(min(caps.values()) / 2)
            print(f"reliability: capacity through the gateway {caps}", flush=True)
        print(f"reliability: fault load {rate:g} req/s", flush=True)
        for kind in args.faults.split(","):
            after_s = 30 if kind == "kill" else 10
            rows.append(fault(stack, kind, logs, rate=rate, during_s=args.during, after_s=after_s, hedge=args.hedge))
            print(markdown(rows[-1:]), flush=True)
    if args.what in ("overload", "all"):
        rows.append(overload(stack, logs))
        print(markdown(rows[-1:]), flush=True)
    if args.what in ("soak", "all"):
        rows.append(soak(stack, logs, seconds=args.soak_s, share=args.soak_share))
        print(markdown(rows[-1:]), flush=True)
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "rows.json").write_text(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
    print(markdown(rows))
    print(f"reliability: figures in {logs / 'rows.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
