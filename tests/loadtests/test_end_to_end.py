"""The real stack (TorchServe, the TF server, the gateway) on free ports, driven by the runner.

About 40 s of load (the ``quick`` profile). The runner runs in its own process, so this
test process never imports Locust or gevent.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadtests import payload, report
from tests.loadtests.test_report import html_tables
from tests.utils.servers import REPO, free_port, log_tail

pytestmark = pytest.mark.slow

PORTS = (
    "TORCH_API_INFERENCE_PORT", "TORCH_API_MANAGEMENT_PORT", "TORCH_API_METRICS_PORT",
    "TORCH_API_GRPC_INFERENCE_PORT", "TORCH_API_GRPC_MANAGEMENT_PORT", "TF_API_REST_PORT", "TF_API_GRPC_PORT",
    "GATEWAY_PORT", "GATEWAY_GRPC_PORT",
)  # fmt: skip


def tails(log_dir: Path) -> str:
    parts = []
    for service in ("torch_api", "tf_api", "gateway"):
        parts.append(f"--- {service} launcher log ---\n{log_tail(log_dir / service / 'launcher.log', 40)}")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    base = tmp_path_factory.mktemp("stack")
    env = dict(os.environ)
    env.update({name: str(free_port()) for name in PORTS})
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "STACK_RUN_DIR": str(base / "run"),
            "STACK_LOG_DIR": str(base / "logs"),
            "TORCH_API_MODELS": "digits,digits_ort",
            "TORCH_API_WORKER_PORT": str(random.randrange(200, 600) * 100),
        }
    )
    cmd = [sys.executable, "-m", "stack"]
    try:
        up = subprocess.run([*cmd, "up"], cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
        if up.returncode != 0:
            pytest.fail(f"stack up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}\n{tails(base / 'logs')}")
        yield json.loads((base / "run" / "stack.json").read_text()), env
    finally:
        down = subprocess.run([*cmd, "down"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stderr


def test_quick_scenario_end_to_end(stack: tuple[dict[str, Any], dict[str, str]], tmp_path: Path) -> None:
    info, env = stack
    stack_json = Path(env["STACK_RUN_DIR"]) / "stack.json"
    reports = tmp_path / "reports"
    cmd = [
        sys.executable,
        "-m",
        "loadtests",
        "run",
        "--profile",
        "quick",
        "--stack",
        str(stack_json),
        "--out",
        str(reports),
    ]
    try:
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-4000:]}"
        check_report(next(reports.iterdir()), info)
    except BaseException:
        print(tails(Path(env["STACK_LOG_DIR"])))
        raise


def check_report(out: Path, info: dict[str, Any]) -> None:
    results = json.loads((out / "results.json").read_text())
    targets = [
        "torch",
        "torch_ort",
        "tf",
        "gw_torch",
        "gw_torch_ort",
        "gw_tf",
        "gw_compare",
        "gw_v2_torch",
        "gw_v2b_tf",
    ]
    assert sorted(r["target"] for r in results["comparison"]["runs"]) == sorted(targets)
    assert sorted(results["comparison"]["orders"][0]) == sorted(targets)

    # the files exist and parse
    html = (out / "report.html").read_text()
    tables = html_tables(html)
    markdown = (out / "report.md").read_text()
    for plot in ("latency_percentiles", "latency_cdf", "step_load", "gateway_overhead", "latency_vs_load_digits",
                 "breakdown"):  # fmt: skip
        assert (out / "plots" / f"{plot}.png").stat().st_size > 0

    # every target served requests, none failed, every figure was taken in windows and its cells are its own
    summary = {row[0]: row for row in next(t for t in tables if t[0][:2] == ["target", "req/s"])[1:]}
    for run in results["comparison"]["runs"]:
        figure = run["figure"]
        assert figure["requests"] > 0, run["target"]
        assert figure["failures"] == 0, run["target"]
        assert 3 <= figure["windows"] <= results["profile"]["windows"]["max_windows"]
        assert len(json.loads((out / run["samples"]).read_text())) == figure["requests"]
        cells = summary[run["target"]]
        assert cells[1] == f"{figure['rps']:,.1f}"
        assert cells[2] == f"{figure['p50_ms']:,.2f}"
        assert cells[5] == f"{figure['p99_ms']:,.2f}"
        assert cells[7] == str(figure["requests"])
        assert cells[9] == ("stable" if figure["stable"] else "UNSTABLE")
        # the CPU its server (and the gateway, through it) spent per request: none for /compare's fan-out
        if run["target"] == "gw_compare":
            assert cells[11] == "–"
        else:
            assert float(cells[11].split()[0].replace(",", "")) > 0, run["target"]
    rows = report.summary_rows(results)
    assert all(r.requests > 0 and r.failures == 0 for r in rows)

    # the gateway counted exactly what Locust sent through it (warm-up included), without errors
    snapshot = json.loads((out / "gateway_stats.json").read_text())["models"]["digits"]
    sent = results["gateway_stats"]["sent"]
    # the stack runs Triton too: gw_compare's fan-out reaches its two backends
    assert set(sent) == {"torch", "torch_ort", "tf", "triton", "triton_ort"}
    for backend, count in sent.items():
        assert snapshot[backend]["since_reset"]["count"] == count, backend
        assert snapshot[backend]["since_reset"]["errors"] == {}

    # the SLO search: its own bracket from the start rate, three shuffled confirmation rounds, a verdict
    slo = results["slo"]
    assert len(slo["orders"]) == 4
    for target in ("tf", "torch"):
        found = slo["results"][target]
        assert found["probes"][0]["rate"] == 40.0
        # one request at a time before the search: the latency with no queue, from enough requests for a p50
        assert found["unloaded"]["requests"] >= 20, found["unloaded"]
        assert 0 < found["unloaded"]["p50_ms"] < 200
        assert found["confirmed_rounds"] == 3, found
        assert found["max_rps"] > 0
    assert "## Verdict" in markdown
    assert "- **TF server measured:** " + info["tf_server"] in markdown

    # where the time goes: every direct and gateway target, from the real servers' metrics
    found = report.breakdowns(results)
    for target in ("torch", "torch_ort", "tf", "gw_torch", "gw_tf"):
        parts = {p["key"]: p["ms"] for p in found[target]["parts"]}
        assert parts["queue"] is not None, (target, parts)
        assert parts["queue"] >= 0, (target, parts)
        assert parts["compute"] is not None, (target, parts)
        assert parts["compute"] > 0, (target, parts)
        assert found[target]["closes"] or found[target]["notes"], target

    # the step load, wrk and the labels; the environment names the TF server and the configuration
    assert [r["users"] for r in results["step"]["runs"]] == [1, 4]
    assert results["wrk"]["result"]["requests"] > 0
    assert results["wrk"]["result"]["non_2xx"] == 0
    assert results["environment"]["tf_server"] == info["tf_server"]
    assert results["config_hash"] == info["config_hash"]
    assert set(results["loadgen"]["phases"]) == {"comparison", "step", "slo", "wrk"}
    assert f"config {info['config_hash']}" in markdown

    # /compare agreement (every compare in the run was checked by Locust; one more here, by hand)
    spec = payload.load_model("digits")
    request = urllib.request.Request(
        f"{info['gateway']}/v1/models/digits/compare",
        data=payload.body(spec, 8, 3),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    assert {r["backend"] for r in answer["results"]} == {"torch", "torch_ort", "tf", "triton", "triton_ort"}
    assert answer["max_abs_diff"] <= 1e-4
