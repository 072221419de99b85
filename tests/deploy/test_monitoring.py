"""The monitoring profile: Prometheus scrapes what compose runs; the dashboard queries metrics the gateway has."""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType
from typing import Any

import yaml

from gateway.metrics import Metrics
from tests.deploy import compose
from tests.deploy.compose import DEFAULT, REPO

GRAFANA = REPO / "deploy" / "grafana"


def _exposed_names() -> set[str]:
    names: set[str] = set()
    for family in Metrics().registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        names |= {family.name + s for s in suffixes}
    return names


def _make_dashboard() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_dashboard", GRAFANA / "make_dashboard.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _exprs() -> list[str]:
    board: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "duoserve.json").read_text())
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def test_prometheus_scrapes_each_service_on_its_metrics_port() -> None:
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    targets = {name: (j["static_configs"][0]["targets"], j["metrics_path"]) for name, j in jobs.items()}
    assert targets == {
        "gateway": (["gateway:8000"], "/metrics"),
        "torchserve": (["torch_api:8082"], "/metrics"),
        "tf_serving": (["tf_api:8501"], "/monitoring/prometheus/metrics"),
    }
    services = compose.merged(DEFAULT)["services"]
    for (target,), _ in targets.values():
        host, port = target.split(":")
        assert host in services
        assert port in [str(p) for p in services[host].get("expose", [])] + ["8000"]
    # the gateway guards /metrics with its API key; Prometheus reads it from the file compose writes
    assert jobs["gateway"]["authorization"]["credentials_file"] == "/run/duoserve/gateway_api_key"
    assert "/run/duoserve/gateway_api_key" in " ".join(services["prometheus"]["entrypoint"])


def test_tf_metrics_path_is_the_one_tf_serving_is_configured_with() -> None:
    monitoring = (REPO / "services" / "tf_api" / "monitoring.config").read_text()
    assert 'path: "/monitoring/prometheus/metrics"' in monitoring


def test_dashboard_file_is_the_generated_one() -> None:
    assert (GRAFANA / "dashboards" / "duoserve.json").read_text() == _make_dashboard().render(), (
        "run python deploy/grafana/make_dashboard.py"
    )


def test_dashboard_queries_only_metrics_the_gateway_exposes() -> None:
    exposed = _exposed_names()
    used = {m for expr in _exprs() for m in re.findall(r"\b(gateway_\w+)", expr)}
    assert used, "no gateway metric in the dashboard"
    assert used <= exposed, f"unknown metrics {sorted(used - exposed)}; the gateway has {sorted(exposed)}"


def test_dashboard_has_latency_percentiles_throughput_errors_and_shadow() -> None:
    exprs = _exprs()
    assert any("histogram_quantile(0.99" in e and "gateway_request_duration_seconds_bucket" in e for e in exprs)
    assert any("by (le, backend)" in e for e in exprs)
    assert any(e.startswith("sum by (backend) (rate(gateway_requests_total") for e in exprs)
    assert any("by (backend, outcome)" in e and 'outcome!="ok"' in e for e in exprs)
    assert any("gateway_shadow_max_abs_diff_bucket" in e for e in exprs)


def test_grafana_provisioning_points_at_the_mounted_paths() -> None:
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasource["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert source["uid"] == _make_dashboard().DATASOURCE["uid"]
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "duoserve.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    mounts = compose.merged(DEFAULT)["services"]["grafana"]["volumes"]
    assert any(str(m).endswith(f"deploy/grafana/dashboards:{path}:ro") for m in mounts), mounts
    assert compose.merged(DEFAULT)["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == (
        "ci-dummy-grafana-password"
    )
