"""Where the time goes: the arithmetic on synthetic sources, and reading the servers' metrics."""

from __future__ import annotations

import pytest

from loadtests import servermetrics
from loadtests.breakdown import Sources, split

SERVER = {"total": 6.0, "queue": 1.5, "pre": 0.5, "inference": 2.0, "compute": 1.6, "post": 0.3}


def test_a_gateway_target_splits_into_parts_that_sum_to_the_client_latency() -> None:
    found = split(Sources(client_ms=10.0, via_gateway=True, gateway_ms=0.4, backend_ms=7.0, server=SERVER))
    parts = found.parts
    assert parts["client_hop"] == pytest.approx(10.0 - 0.4 - 7.0)
    assert parts["gateway"] == 0.4
    assert parts["backend_hop"] == pytest.approx(1.0)
    assert parts["queue"] == 1.5
    assert parts["inference"] == pytest.approx(0.4)  # outside the framework
    assert parts["compute"] == 1.6
    assert parts["server_other"] == pytest.approx(6.0 - 1.5 - 0.5 - 2.0 - 0.3)
    assert found.accounted_ms == pytest.approx(10.0)
    assert found.unaccounted_ms == pytest.approx(0.0)
    assert found.closes
    assert found.notes == []


def test_a_direct_target_has_no_gateway_parts() -> None:
    found = split(Sources(client_ms=8.0, via_gateway=False, server=SERVER))
    assert "gateway" not in found.parts
    assert found.parts["client_hop"] == pytest.approx(2.0)
    assert found.closes


def test_a_missing_source_is_reported_as_unaccounted() -> None:
    server = {**SERVER, "pre": None, "inference": None, "compute": None, "post": None}  # e.g. TF Serving's binary
    found = split(Sources(client_ms=8.0, via_gateway=False, server=server))
    assert found.parts["server_other"] is None
    assert found.unaccounted_ms == pytest.approx(8.0 - 2.0 - 1.5)
    assert not found.closes
    assert found.notes[-1].startswith("4.500 ms (56% of the client latency) unaccounted: no measurement of")
    assert "handler pre-processing" in found.notes[-1]


def test_sources_that_disagree_are_named() -> None:
    # the server claims more time than the gateway's whole call took
    found = split(Sources(client_ms=10.0, via_gateway=True, gateway_ms=0.4, backend_ms=4.0, server=SERVER))
    assert found.parts["backend_hop"] == pytest.approx(-2.0)
    assert any(n.startswith("gateway → backend comes out at -2.000 ms") for n in found.notes)


TORCH_TEXT = """# TYPE ts_inference_latency_microseconds counter
ts_inference_latency_microseconds{model_name="digits",model_version="default",hostname="vm",} %(total)s
# TYPE ts_queue_latency_microseconds counter
ts_queue_latency_microseconds{model_name="digits",model_version="default",hostname="vm",} %(queue)s
# TYPE ts_inference_requests_total counter
ts_inference_requests_total{model_name="digits",model_version="default",hostname="vm",} %(n)s
# TYPE DuoserveHandlerRequests counter
DuoserveHandlerRequests{ModelName="digits",Level="Model",Hostname="vm",} %(n)s
# TYPE DuoserveComputeMicros counter
DuoserveComputeMicros{ModelName="digits",Level="Model",Hostname="vm",} %(compute)s
# TYPE DuoserveComputeMicros counter
DuoserveComputeMicros{ModelName="digits_ort",Level="Model",Hostname="vm",} 99999.0
"""


def test_torchserve_counters_give_means_per_request_over_a_window(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = iter(
        [
            TORCH_TEXT % {"total": 1000.0, "queue": 100.0, "n": 10.0, "compute": 300.0},
            TORCH_TEXT % {"total": 61000.0, "queue": 20100.0, "n": 20.0, "compute": 10300.0},
        ]
    )
    monkeypatch.setattr(servermetrics, "_get", lambda url, timeout=5.0: next(texts))
    before = servermetrics.torchserve("http://127.0.0.1:1", "digits")
    after = servermetrics.torchserve("http://127.0.0.1:1", "digits")
    means = servermetrics.mean_ms(before, after)
    assert means["total"] == pytest.approx(6.0)
    assert means["queue"] == pytest.approx(2.0)
    assert means["compute"] == pytest.approx(1.0)
    assert means["pre"] is None  # not exported: stays unknown, never zero
    assert means["requests"] == 10


def test_an_unreachable_server_gives_no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servermetrics, "_get", lambda url, timeout=5.0: None)
    snap = servermetrics.tf_server("http://127.0.0.1:1", "digits")
    assert servermetrics.mean_ms(snap, snap) == {**dict.fromkeys(servermetrics.PARTS), "requests": None}
