"""Write ``deploy/grafana/dashboards/duoserve.json`` from the gateway's metric names.

The dashboard is generated so that its queries and the gateway's metrics cannot drift
apart silently: ``tests/deploy`` regenerates it and compares, and checks every metric
it names against :mod:`gateway.metrics`. Run ``python deploy/grafana/make_dashboard.py``
after changing a panel.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "duoserve.json"
DATASOURCE = {"type": "prometheus", "uid": "duoserve-prometheus"}
WINDOW = "$__rate_interval"


def _quantile(q: float, metric: str) -> str:
    return (
        f"histogram_quantile({q}, sum by (le, backend) "
        f'(rate({metric}_bucket{{model=~"$model", outcome="ok"}}[{WINDOW}])))'
    )


def _panel(panel_id: int, title: str, unit: str, targets: list[tuple[str, str]], x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard() -> dict[str, Any]:
    """The dashboard as a dict (Grafana's JSON model)."""
    request = "gateway_request_duration_seconds"
    backend = "gateway_backend_duration_seconds"
    panels = [
        _panel(1, "Latency through the gateway by backend (p50 / p99)", "s",
               [(_quantile(0.5, request), "p50 {{backend}}"), (_quantile(0.99, request), "p99 {{backend}}")], 0, 0),
        _panel(2, "Backend round trip as the gateway saw it (p50 / p99)", "s",
               [(_quantile(0.5, backend), "p50 {{backend}}"), (_quantile(0.99, backend), "p99 {{backend}}")], 12, 0),
        _panel(3, "Throughput by backend", "reqps",
               [(f'sum by (backend) (rate(gateway_requests_total{{model=~"$model"}}[{WINDOW}]))', "{{backend}}")],
               0, 8),
        _panel(4, "Errors by outcome", "reqps",
               [(f'sum by (backend, outcome) (rate(gateway_requests_total{{model=~"$model", outcome!="ok"}}'
                 f"[{WINDOW}]))", "{{backend}} {{outcome}}")], 12, 8),
        _panel(5, "Shadow: max abs difference to the primary (p50 / p99)", "none",
               [(f"histogram_quantile({q}, sum by (le, primary, shadow) "
                 f'(rate(gateway_shadow_max_abs_diff_bucket{{model=~"$model"}}[{WINDOW}])))',
                 f"p{int(q * 100)} {{{{primary}}}} vs {{{{shadow}}}}") for q in (0.5, 0.99)], 0, 16),
        _panel(6, "Shadow requests by outcome", "reqps",
               [(f'sum by (shadow, outcome) (rate(gateway_shadow_requests_total{{model=~"$model"}}[{WINDOW}]))',
                 "{{shadow}} {{outcome}}")], 12, 16),
        _panel(7, "In flight per backend and open circuits", "short",
               [("sum by (backend) (gateway_backend_in_flight)", "in flight {{backend}}"),
                ("max by (backend) (gateway_backend_circuit_open)", "circuit open {{backend}}")], 0, 24),
    ]  # fmt: skip
    return {
        "uid": "duoserve-overview",
        "title": "duoserve: TorchServe vs TF Serving through the gateway",
        "tags": ["duoserve"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "model",
                    "label": "model",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {"query": "label_values(gateway_requests_total, model)", "refId": "model"},
                    "definition": "label_values(gateway_requests_total, model)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                }
            ]
        },
        "panels": panels,
    }


def render() -> str:
    """The file's text."""
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    """Write the dashboard file."""
    OUT.write_text(render())
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
