"""The report builder on a checked-in quick run (fixtures/run: torch and gw_torch, two repeats, SLO search)."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from contract.latency import percentiles_ms
from loadtests import report
from loadtests.summary import Spread
from tests.utils.servers import REPO

FIXTURE = Path(__file__).parent / "fixtures" / "run"
VOID = {"meta", "img", "br", "hr", "link", "input"}


class TagBalance(HTMLParser):
    """Fails on a closing tag that does not match the open one."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "table":
            self._table = dict(attrs).get("id") or f"t{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in VOID, f"<{tag}/> is not a void element"

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> with nothing open"
        opened = self.stack.pop()
        assert opened == tag, f"</{tag}> closes <{opened}>"
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(html: str) -> list[list[list[str]]]:
    parser = TagBalance()
    parser.feed(html)
    parser.close()
    assert parser.stack == []
    return list(parser.tables.values())


@pytest.fixture
def built(tmp_path: Path) -> report.Built:
    out = tmp_path / "run"
    shutil.copytree(FIXTURE, out)
    return report.build(out)


def test_summary_numbers_are_hdrhistogram_figures_of_the_kept_latencies(built: report.Built) -> None:
    results = json.loads((built.out / "results.json").read_text())
    by_target = {row.target: row for row in built.rows}
    assert list(by_target) == ["torch", "gw_torch"]
    for name, row in by_target.items():
        runs = [r for r in results["comparison"]["runs"] if r["target"] == name]
        assert len(runs) == 2
        p99s = []
        for run in runs:
            latencies = json.loads((built.out / run["samples"]).read_text())
            assert len(latencies) == run["figure"]["requests"]
            # the one estimator: HdrHistogram over the figure's own latencies
            assert percentiles_ms([x / 1000 for x in latencies])["p99_ms"] == pytest.approx(
                run["figure"]["p99_ms"], rel=2e-3
            )
            p99s.append(run["figure"]["p99_ms"])
        assert row.latency["p99"] == Spread(statistics.median(p99s), min(p99s), max(p99s))
        assert row.requests == sum(r["figure"]["requests"] for r in runs)
        assert row.stable == all(r["figure"]["stable"] for r in runs)
        assert row.slo_rps == results["slo"]["results"][name]["max_rps"]


def test_files_exist_and_html_parses(built: report.Built) -> None:
    for name in ["report.md", "report.html", "plots/latency_percentiles.png", "plots/latency_cdf.png",
                 "plots/gateway_overhead.png", "plots/latency_vs_load_digits.png", "plots/breakdown.png"]:  # fmt: skip
        path = built.out / name
        assert path.exists(), name
        assert path.stat().st_size > 0, name
    assert (built.out / "plots/latency_cdf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tables = html_tables((built.out / "report.html").read_text())
    summary = next(t for t in tables if t[0][:3] == ["target", "req/s", "p50 ms"])
    torch = next(r for r in summary if r[0] == "torch")
    row = next(r for r in built.rows if r.target == "torch")
    assert torch[7] == str(row.requests)
    assert torch[8] == str(row.failures)
    assert torch[9] in ("stable", "UNSTABLE")
    # the spread is shown, not hidden: median (min–max)
    assert "(" in torch[1]
    assert "–" in torch[1]


def test_the_report_opens_with_a_verdict_and_labels_every_figure(built: report.Built) -> None:
    text = (built.out / "report.md").read_text()
    results = json.loads((built.out / "results.json").read_text())
    assert text.index("## Verdict") < text.index("## Summary")
    assert "- **Throughput under the SLO:** " in text
    assert "- **Latency at low load:** " in text
    assert "- **TF server measured:** duoserve-compat" in text
    label = f"*seed 0 · config {results['config_hash']} · TF server duoserve-compat · load generator ≤ "
    assert text.count(label) >= 3  # comparison, SLO search, breakdown
    assert "(closed loop)*" in text
    assert "(open loop, achieved ≥ " in text
    assert built.summary_markdown in text
    gateway = json.loads((built.out / "gateway_stats.json").read_text())["models"]["digits"]["torch"]["since_reset"]
    assert f"| torch | {results['gateway_stats']['sent']['torch']} | {gateway['count']} |" in text


def test_the_curve_is_every_slo_probe_by_offered_rate(built: report.Built) -> None:
    results = json.loads((built.out / "results.json").read_text())
    curve = report.curve_points(results)
    for target, points in curve.items():
        probes = results["slo"]["results"][target]["probes"]
        assert len(points) == len(probes)
        assert [p["rate"] for p in points] == sorted(p["rate"] for p in probes)


def test_the_breakdown_closes_or_says_what_is_unaccounted(built: report.Built) -> None:
    results = json.loads((built.out / "results.json").read_text())
    found = report.breakdowns(results)
    assert set(found) == {"torch", "gw_torch"}
    for name, b in found.items():
        keys = [p["key"] for p in b["parts"]]
        assert ("gateway" in keys) == (name == "gw_torch")
        total = sum(p["ms"] for p in b["parts"] if p["ms"] is not None)
        assert total == pytest.approx(b["accounted_ms"])
        assert b["client_ms"] == pytest.approx(
            statistics.fmean(r["figure"]["mean_ms"] for r in results["comparison"]["runs"] if r["target"] == name)
        )
        # every TorchServe source is present here, so the parts close on the client latency
        assert b["closes"], b["notes"]
        assert all(p["ms"] is not None for p in b["parts"])


def test_gateway_overhead_uses_both_sides(built: report.Built) -> None:
    results = json.loads((built.out / "results.json").read_text())
    (row,) = report.overhead(built.out, results, built.rows)
    samples = {
        t: [x for r in results["comparison"]["runs"] if r["target"] == t
            for x in json.loads((built.out / r["samples"]).read_text())]
        for t in ("torch", "gw_torch")
    }  # fmt: skip
    p50 = {t: percentiles_ms([x / 1000 for x in v])["p50_ms"] for t, v in samples.items()}
    assert row["backend"] == "torch"
    assert row["overhead_p50_ms"] == pytest.approx(p50["gw_torch"] - p50["torch"])


def test_report_modules_never_import_locust_or_gevent() -> None:
    code = (
        "import sys, loadtests.report, loadtests.slo, loadtests.payload, loadtests.checks, loadtests.profile, "
        "loadtests.targets, loadtests.envinfo, loadtests.compare, loadtests.stability, loadtests.verdict, "
        "loadtests.breakdown, loadtests.arrivals, loadtests.__main__; "
        "bad = [m for m in ('gevent', 'locust') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_rebuild_and_compare_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(FIXTURE, out)
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "report", str(out)], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "| torch |" in done.stdout
    assert (out / "report.html").exists()
    # the same run against itself with another configuration hash: side by side, and a loud warning
    other = tmp_path / "other"
    shutil.copytree(FIXTURE, other)
    results = json.loads((other / "results.json").read_text())
    results["config_hash"] = "0123456789ab"
    (other / "results.json").write_text(json.dumps(results))
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "compare", str(out), str(other), "--out", str(tmp_path / "cmp")],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stderr.startswith("WARNING: runs differ in stack configuration (")
    assert "0123456789ab" in done.stderr
    markdown = (tmp_path / "cmp" / "compare.md").read_text()
    assert "> **WARNING: runs differ in stack configuration" in markdown
    lines = markdown.splitlines()
    # one row per target and one line per run's verdict (not run together)
    assert sum(line.startswith("| torch | ") for line in lines) == 1
    assert sum(line.startswith("| gw_torch | ") for line in lines) == 1
    assert [line[:11] for line in lines if line.startswith("- **run ")] == ["- **run 1**", "- **run 2**"]
    assert (tmp_path / "cmp" / "plots" / "compare.png").stat().st_size > 0
