"""The serving report finds the newest frameworks report and takes the framework's share of serving latency."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path
from typing import Any

import pytest

from loadtests import frameworks_link, report
from tests.loadtests.test_report import FIXTURE


def _write(reports: Path, name: str, entries: list[dict[str, Any]]) -> Path:
    folder = reports / name
    folder.mkdir(parents=True)
    data = {"created": name, "environment": {"device": "cpu", "threads": 2}, "inference": entries}
    (folder / "frameworks.json").write_text(json.dumps(data))
    return folder


def _entry(runtime: str, p50: float, batch: int = 1, model: str = "digits", parity: str = "ok") -> dict[str, Any]:
    return {"runtime": runtime, "model": model, "batch": batch, "p50_ms": p50, "parity": parity}


def test_no_frameworks_report(tmp_path: Path) -> None:
    assert frameworks_link.latest(tmp_path) is None
    assert frameworks_link.framework_compute(tmp_path, tmp_path / "run", "digits", 1, {}) is None


def test_newest_report_and_shares(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _write(reports, "frameworks-20260101-000000", [_entry("torchscript", 9.0)])
    _write(
        reports,
        "frameworks-20260102-000000",
        [
            _entry("torchscript", 0.5),
            _entry("torchscript", 0.4),
            _entry("onnxruntime", 0.1),
            _entry("savedmodel", 0.2, parity="mismatch"),
            _entry("torchscript", 0.01, batch=8),
            _entry("torchscript", 0.01, model="mlp"),
        ],
    )
    run = reports / "20260103-000000"
    found = frameworks_link.framework_compute(
        reports, run, "digits", 1, {"torch": ("torch", 4.0), "gw_torch_ort": ("torch_ort", 5.0), "tf": ("tf", 2.0)}
    )
    assert found is not None
    assert found["report"] == "../frameworks-20260102-000000/report.html"
    assert found["best_p50_ms"] == {"torchscript": 0.4, "onnxruntime": 0.1}
    shares = {s["target"]: s for s in found["shares"]}
    assert set(shares) == {"torch", "gw_torch_ort"}  # the disagreeing SavedModel figure is not used
    assert shares["torch"]["runtime"] == "torchscript"
    assert shares["torch"]["share"] == pytest.approx(0.1)
    assert shares["gw_torch_ort"]["share"] == pytest.approx(0.02)


def test_serving_report_links_the_frameworks_report(tmp_path: Path) -> None:
    """`make run`'s report names the newest frameworks report and the share of p50 that is framework compute."""
    out = tmp_path / "run"
    shutil.copytree(FIXTURE, out)
    _write(tmp_path, "frameworks-20260102-000000", [_entry("torchscript", 0.25)])
    built = report.build(out)
    runs = json.loads((out / "results.json").read_text())["comparison"]["runs"]
    # the summary's p50: the median across repeats of each figure's HdrHistogram p50
    p50 = statistics.median(r["figure"]["p50_ms"] for r in runs if r["target"] == "torch")
    markdown = (built.out / "report.md").read_text()
    assert "[frameworks report](../frameworks-20260102-000000/report.html)" in markdown
    share = 0.25 / p50 * 100
    assert f"framework compute is 0.250 ms (torchscript) of the p50 {p50:,.2f} ms through torch ({share:,.1f} %)" in (
        markdown
    )
    assert "through gw_torch" in markdown
    assert 'href="../frameworks-20260102-000000/report.html"' in (built.out / "report.html").read_text()
