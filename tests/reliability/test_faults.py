"""Faults between the gateway and TorchServe under a bounded load, with the failover policy (torch -> tf).

The fault proxy (loadtests/reliability/faultproxy.py) sits in front of the stack's real TorchServe; the
gateway is one of our own. These tests assert behaviour (statuses, who served, the breaker's
state, recovery, same gateway process); the timings are in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtests.reliability.faultproxy import FaultProxy, Mode
from loadtests.reliability.load import OK, Phase, Run, between, drive
from loadtests.reliability.monitor import Watch
from tests.reliability._support import FAILOVER, Gateway, digits_body, running_gateway
from tests.utils.stack import Stack

pytestmark = pytest.mark.slow
RATE = 40.0


@pytest.fixture
def proxied(stack: Stack, tmp_path: Path) -> Iterator[tuple[FaultProxy, Gateway]]:
    """A fault proxy in front of TorchServe and a failover gateway behind it (read timeout 1 s, cooldown 1 s)."""
    with FaultProxy(int(stack.info.torch.rsplit(":", 1)[1])) as proxy:
        env = {
            "GATEWAY_TORCH_URL": proxy.url,
            "GATEWAY_POLICIES": FAILOVER,
            "GATEWAY_READ_TIMEOUT_S": "1",
            "GATEWAY_BREAKER_COOLDOWN_S": "1",
        }
        with running_gateway(stack, tmp_path, **env) as gateway:
            yield proxy, gateway


def _load(gateway: Gateway, phases: list[Phase]) -> Run:
    url = f"{gateway.url}/v1/models/digits/predict"
    return asyncio.run(drive(url, digits_body(), phases, concurrency=128, timeout_s=10))


def _phases(proxy: FaultProxy, mode: Mode, latency_s: float = 0.0) -> list[Phase]:
    return [
        Phase("before", 2.0, RATE),
        Phase("during", 4.0, RATE, lambda: proxy.set_mode(mode, latency_s)),
        Phase("after", 4.0, RATE, lambda: proxy.set_mode("pass")),
    ]


def _tail_backends(run: Run, seconds: float = 1.0) -> Counter[str]:
    end = run.phase_ends["after"]
    return Counter(s.backend for s in between(run.samples, end - seconds, end))


@pytest.mark.parametrize("mode", ["reset", "down"])
def test_refused_or_reset_torchserve_fails_over_to_tf_and_comes_back(
    proxied: tuple[FaultProxy, Gateway], mode: Mode
) -> None:
    proxy, gateway = proxied
    pid = gateway.pid
    with Watch(pid, gateway.url, interval_s=0.1) as watch:
        run = _load(gateway, _phases(proxy, mode))
    statuses = Counter(s.status for s in run.samples)
    assert set(statuses) == {OK}, f"{statuses}\n{gateway.tail()}"
    during = between(run.samples, run.phase_starts["during"] + 0.5, run.phase_starts["after"])
    assert {s.backend for s in during} == {"tf"}  # failover served every request
    assert watch.first_change("torch", "open", run.t0 + run.phase_starts["during"]) is not None
    assert _tail_backends(run) == Counter({"torch": len(between(run.samples, run.phase_ends["after"] - 1, 1e9))})
    assert gateway.backends()["torch"]["circuit"] == "closed"
    assert gateway.proc.returncode is None  # the same gateway process throughout
    assert proxy.counters.reset > 0 or mode == "down"


def test_blackholed_torchserve_times_out_then_the_breaker_fails_over(proxied: tuple[FaultProxy, Gateway]) -> None:
    proxy, gateway = proxied
    with Watch(gateway.pid, gateway.url, interval_s=0.1) as watch:
        run = _load(gateway, _phases(proxy, "blackhole"))
    failed = [s for s in run.samples if s.status != OK]
    # requests already sent to TorchServe wait out the read timeout: 504, never a hang or a reset
    assert failed, "a blackhole should cost the requests in flight when it starts"
    assert {s.status for s in failed} == {504}
    assert all(s.backend == "torch" for s in failed)
    assert max(s.latency_s for s in failed) < 3  # bounded by GATEWAY_READ_TIMEOUT_S=1
    assert len(failed) < len(run.samples) / 4
    opened = watch.first_change("torch", "open", run.t0 + run.phase_starts["during"])
    assert opened is not None
    after_open = between(run.samples, opened - run.t0 + 0.5, run.phase_starts["after"])
    assert after_open
    assert {s.backend for s in after_open if s.status == OK} == {"tf"}
    # once open, no live request meets the blackhole: the breaker's probe is a readiness check
    probes = [s for s in after_open if s.status != OK]
    assert len(probes) <= (run.phase_starts["after"] - opened + run.t0) / 1.0 + 1, probes
    assert set(_tail_backends(run)) == {"torch"}
    assert gateway.proc.returncode is None


def test_slow_torchserve_still_serves_every_request(proxied: tuple[FaultProxy, Gateway]) -> None:
    proxy, gateway = proxied
    with Watch(gateway.pid, gateway.url, interval_s=0.1) as watch:
        run = _load(gateway, _phases(proxy, "latency", latency_s=0.3))
    assert {s.status for s in run.samples} == {OK}
    assert {s.backend for s in run.samples} == {"torch"}  # slow is not failed: no failover, no breaker
    assert watch.first_change("torch", "open", 0) is None
    during = between(run.samples, run.phase_starts["during"] + 0.5, run.phase_starts["after"])
    assert min(s.latency_s for s in during) >= 0.3  # the fault was really there


def test_killed_and_restarted_backend_under_load(stack: Stack, tmp_path: Path) -> None:
    """The real TF server is stopped and restarted (python -m stack) under load; failover tf -> torch covers it."""
    from stack.native import StackPaths, stop_service

    policy = json.dumps({"digits": {"policy": "failover", "order": ["tf", "torch"]}})
    paths = StackPaths(stack.run_dir, stack.log_dir)
    with running_gateway(stack, tmp_path, GATEWAY_POLICIES=policy, GATEWAY_BREAKER_COOLDOWN_S="1") as gateway:
        pid = gateway.pid

        def restart() -> None:
            done = stack.command("restart", "tf_api")
            assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{stack.tails()}"

        phases = [
            Phase("before", 2.0, RATE),
            Phase("during", 3.0, RATE, lambda: stop_service(paths, "tf_api")),
            Phase("after", 20.0, RATE, restart),
        ]
        with Watch(pid, gateway.url, interval_s=0.2) as watch:
            run = _load(gateway, phases)
        assert "after" in run.actions_done
        failed = [s for s in run.samples if s.status != OK]
        assert len(failed) <= 0.005 * len(run.samples), f"{Counter(s.status for s in failed)}\n{gateway.tail()}"
        down = between(run.samples, run.phase_starts["during"] + 1.0, run.phase_starts["after"])
        assert down
        assert {s.backend for s in down if s.status == OK} == {"torch"}
        assert watch.first_change("tf", "open", run.t0 + run.phase_starts["during"]) is not None
        back = run.actions_done["after"]
        assert back < run.phase_ends["after"] - 5, "tf_api took too long to restart for the check below"
        assert set(_tail_backends(run, 2.0)) == {"tf"}  # the primary serves again
        assert gateway.proc.returncode is None
        assert gateway.pid == pid
        assert httpx.get(f"{gateway.url}/health/ready", timeout=10).status_code == 200
