"""Parsing wrk's report (the benchmarks' native load generator)."""

from __future__ import annotations

import pytest

from loadtests.wrk import parse

OUTPUT = """\
Running 8s test @ http://127.0.0.1:8080/predictions/mlp
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.61ms    1.53ms  38.02ms   91.02%
    Req/Sec     3.07k   302.15     3.53k    77.50%
  Latency Distribution
     50%    2.31ms
     75%  812.00us
     90%    3.41ms
     99%    1.02s
  48921 requests in 8.00s, 9.61MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   6114.51
Transfer/sec:      1.20MB
"""


def test_parse_reads_throughput_percentiles_and_errors() -> None:
    result = parse(OUTPUT, connections=16, duration_s=8)
    assert result.requests == 48921
    assert result.rps == pytest.approx(6114.51)
    assert result.p50_ms == pytest.approx(2.31)
    assert result.p75_ms == pytest.approx(0.812)
    assert result.p99_ms == pytest.approx(1020.0)
    assert result.non_2xx == 7
    assert result.socket_errors == 5


def test_clean_run_has_no_errors() -> None:
    clean = OUTPUT.replace("  Socket errors: connect 0, read 2, write 0, timeout 3\n", "").replace(
        "  Non-2xx or 3xx responses: 7\n", ""
    )
    result = parse(clean, connections=16, duration_s=8)
    assert (result.non_2xx, result.socket_errors) == (0, 0)
