"""``python -m loadtests run|tune|report|compare``: load tests, tuning, and their reports."""

from __future__ import annotations

import sys

if len(sys.argv) > 1 and sys.argv[1] in ("run", "tune"):
    # gevent must patch the process before anything imports ssl or sockets
    import locust  # noqa: F401

import argparse
import os
from pathlib import Path

from loadtests import compare, report
from loadtests import profile as profiles


def _duration(text: str) -> float:
    """``60``, ``60s``, ``2m``."""
    units = {"s": 1.0, "m": 60.0}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests", description="duoserve load tests and reports")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario profile against a running stack and write a report")
    run.add_argument("--profile", default="default", help="scenario name under loadtests/scenarios/, or a YAML path")
    run.add_argument(
        "--stack",
        type=Path,
        default=Path(os.environ.get("STACK_RUN_DIR") or ".run") / "stack.json",
        help="stack.json of the running stack (default: $STACK_RUN_DIR/stack.json, as services.stack writes it)",
    )
    run.add_argument("--out", type=Path, default=Path("reports"), help="reports folder (a timestamped run dir is made)")
    run.add_argument("--model", help="model (default: the profile's)")
    run.add_argument("--batch", type=int, help="instances per request")
    run.add_argument("--seed", type=int, help="payload seed")
    run.add_argument("--targets", help="comma list of comparison targets, e.g. torch,tf,gw_torch")
    run.add_argument("--users", type=int, help="users per target in the comparison")
    run.add_argument("--window", type=_duration, help="seconds per measurement window (1, 1s, 5s)")
    run.add_argument("--max-windows", type=int, help="windows before a figure is marked unstable")
    run.add_argument("--warmup", type=_duration, help="warm-up seconds per comparison run (dropped)")
    run.add_argument("--repeats", type=int, help="comparison repeats")
    run.add_argument("--step-users", help="comma list of user counts for the step load")
    run.add_argument("--slo-ms", type=float, help="p99 bound of the SLO search")
    run.add_argument("--no-step", action="store_true", help="skip the step load")
    run.add_argument("--no-slo", action="store_true", help="skip the SLO search")
    run.add_argument("--no-wrk", action="store_true", help="skip the wrk cross-check")
    run.add_argument("--gateway-url", help="override stack.json")
    run.add_argument("--torch-url", help="override stack.json")
    run.add_argument("--tf-url", help="override stack.json (TF REST)")
    run.add_argument("--torch-key-file", help="override stack.json")
    run.add_argument("--api-key", help="the gateway's API key if it requires one (default: $LOADTEST_API_KEY)")
    rebuild = sub.add_parser("report", help="rebuild report.md/report.html of a run directory")
    rebuild.add_argument("run_dir", type=Path)
    side = sub.add_parser("compare", help="put two or more run reports side by side (table and plot)")
    side.add_argument("run_dirs", type=Path, nargs="+", metavar="REPORT_DIR")
    side.add_argument("--out", type=Path, help="where to write (default: reports/compare-<time>/)")
    tune = sub.add_parser("tune", help="search each stack's serving settings against the SLO (bounded)")
    tune.add_argument("--model", default="digits", help="model to tune for")
    tune.add_argument("--batch", type=int, default=1, help="instances per request")
    tune.add_argument("--slo-ms", type=float, default=50.0, help="p99 bound")
    tune.add_argument("--budget", type=_duration, default=600.0, help="wall-clock budget (default 10m)")
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--out", type=Path, default=Path("reports"), help="reports folder (tune-<time>/ is made)")
    return parser


def _apply(args: argparse.Namespace) -> profiles.Profile:
    p = profiles.load(args.profile)
    for attr in ("model", "batch", "seed"):
        if getattr(args, attr) is not None:
            setattr(p, attr, getattr(args, attr))
    if args.targets:
        p.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
        # step and SLO follow the comparison targets (never /compare: its rate is not one backend's)
        if p.step:
            p.step.targets = [t for t in p.targets if t != "gw_compare"]
        if p.slo:
            p.slo.targets = [t for t in p.targets if t != "gw_compare"]
        if p.wrk and p.wrk.target not in p.targets:
            p.wrk.target = next((t for t in p.targets if t != "gw_compare"), None)
    c = p.comparison
    c.users = args.users or c.users
    p.windows.window_s = args.window or p.windows.window_s
    p.windows.max_windows = args.max_windows or p.windows.max_windows
    c.warmup_s = args.warmup if args.warmup is not None else c.warmup_s
    c.repeats = args.repeats or c.repeats
    if p.step and args.step_users:
        p.step.users = [int(u) for u in args.step_users.split(",")]
    if p.slo and args.slo_ms:
        p.slo.slo_ms = args.slo_ms
    p.step = None if args.no_step else p.step
    p.slo = None if args.no_slo else p.slo
    p.wrk = None if args.no_wrk else p.wrk
    p.check()
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        try:
            built = report.build(args.run_dir)
        except report.ReportError as exc:
            print(f"loadtests: {exc}", file=sys.stderr)
            return 2
        print(built.summary_markdown)
        print(f"report: {args.run_dir / 'report.html'}")
        return 0
    if args.command == "compare":
        try:
            return compare.main(args.run_dirs, args.out)
        except report.ReportError as exc:
            print(f"loadtests: {exc}", file=sys.stderr)
            return 2
    if args.command == "tune":
        from loadtests import tune  # imports Locust (gevent)

        return tune.main(args)
    from loadtests import runner  # imports Locust (gevent): only for `run`

    try:
        profile = _apply(args)
    except (ValueError, FileNotFoundError, KeyError, TypeError) as exc:
        print(f"loadtests: {exc}", file=sys.stderr)
        return 2
    overrides = {
        "gateway": args.gateway_url,
        "torch": args.torch_url,
        "tf": args.tf_url,
        "key_file": args.torch_key_file,
        "api_key": args.api_key,
    }
    try:
        return runner.run(profile, args.stack, args.out, overrides)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"loadtests: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("loadtests: interrupted; the run directory holds what finished", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
