"""Run ``wrk`` (a native HTTP load generator, Debian package) against an endpoint.

Python load generators cost milliseconds of their own per request on a 2-core host
(docs/benchmarks.md), so benchmark figures come from wrk; the load tests cross-check
Locust with it. This module only builds the Lua script, runs wrk with bounded duration,
and parses its report (wrk computes its percentiles with HdrHistogram too).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput and latency percentiles in milliseconds."""

    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    def to_json(self) -> dict[str, float]:
        """Plain dict for reports."""
        return asdict(self)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"cannot read wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str, connections: int, duration_s: float) -> WrkResult:
    """Parse ``wrk --latency`` output."""
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.M))
    if len(pct) < 4:
        raise ValueError(f"wrk printed no latency distribution (did any request finish?):\n{output}")
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        connections=connections,
        duration_s=duration_s,
        requests=requests,
        rps=rps,
        p50_ms=_ms(pct["50"]),
        p75_ms=_ms(pct["75"]),
        p90_ms=_ms(pct["90"]),
        p99_ms=_ms(pct["99"]),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def run(
    url: str,
    body: bytes,
    *,
    connections: int,
    duration_s: float,
    headers: dict[str, str] | None = None,
    threads: int = 1,
    timeout_s: float = 10.0,
    method: str = "POST",
) -> WrkResult:
    """Send ``body`` to ``url`` (``method``, POST by default) with ``connections`` connections for ``duration_s`` s.

    ``timeout_s`` is wrk's per-request timeout: a slower request counts as a socket
    timeout error, not as a latency sample.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="duoserve-wrk-") as tmp:
        body_path = Path(tmp) / "body.json"
        body_path.write_bytes(body)
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        lua = Path(tmp) / "post.lua"
        lines = [f"wrk.method = {json.dumps(method)}"]
        if method == "POST":
            lines += [f"local f = io.open({json.dumps(str(body_path))}, 'rb')", "wrk.body = f:read('*a')", "f:close()"]
        lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in all_headers.items()]
        lua.write_text("\n".join(lines) + "\n")
        cmd = [
            wrk, "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{max(1, round(duration_s))}s",
            "--timeout", f"{max(1, round(timeout_s))}s", "--latency", "-s", str(lua), url,
        ]  # fmt: skip
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration_s + timeout_s + 30, check=True
        ).stdout
    return parse(out, connections, duration_s)
