"""Who used the CPU: each service's own seconds, and a target's CPU per request from them."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from loadtests.hostload import HostLoad, cpu_ms_per_request

BURN = "import sys, time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\nsys.stdin.read()"


def test_each_service_is_charged_its_own_process_trees_cpu() -> None:
    # a "server" whose child burns 0.4 s of CPU: the child's seconds are the service's, not the other one's
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BURN!r}])"],
        stdin=subprocess.PIPE,
    )
    idle = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        load = HostLoad({"torch_api": parent.pid, "gateway": idle.pid})
        before = load.sample()
        deadline = 20.0
        found = {}
        while deadline > 0:
            found = HostLoad.between(before, load.sample(), 1.0)["service_cpu_s"]
            if found["torch_api"] >= 0.35:
                break
            time.sleep(0.2)
            deadline -= 0.2
        assert found["torch_api"] >= 0.35
        assert found["gateway"] < 0.2
    finally:
        for proc in (parent, idle):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)


def test_cpu_per_request_adds_the_gateway_only_through_it() -> None:
    host = {"service_cpu_s": {"torch_api": 0.5, "triton_api": 0.2, "gateway": 0.3, "tf_api": 0.1}, "requests": 100}
    assert cpu_ms_per_request(host, "torch_ort", via_gateway=False) == pytest.approx(5.0)
    assert cpu_ms_per_request(host, "triton", via_gateway=True) == pytest.approx(5.0)
    assert cpu_ms_per_request(host, "tf", via_gateway=True) == pytest.approx(4.0)


@pytest.mark.parametrize(
    "host",
    [None, {}, {"service_cpu_s": {"torch_api": 0.5}}, {"service_cpu_s": {"torch_api": 0.5}, "requests": 0},
     {"service_cpu_s": {"gateway": 0.5}, "requests": 10}],
)  # fmt: skip
def test_without_the_services_or_requests_there_is_no_figure(host: dict[str, Any] | None) -> None:
    assert cpu_ms_per_request(host, "torch", via_gateway=False) is None
