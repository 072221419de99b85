"""The report builder on checked-in Locust CSVs (fixtures/run: two targets, two repeats)."""

from __future__ import annotations

import csv
import json
import shutil
import statistics
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from loadtests import report
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


def csv_row(path: Path, name: str) -> dict[str, str]:
    with path.open(newline="") as f:
        return next(r for r in csv.DictReader(f) if r["Name"] == name)


@pytest.fixture
def built(tmp_path: Path) -> report.Built:
    out = tmp_path / "run"
    shutil.copytree(FIXTURE, out)
    return report.build(out)


def test_summary_numbers_equal_the_csv_numbers(built: report.Built) -> None:
    results = json.loads((built.out / "results.json").read_text())
    by_target = {row.target: row for row in built.rows}
    assert list(by_target) == ["torch", "gw_torch"]
    for name, row in by_target.items():
        csvs = [csv_row(built.out / r["csv"], name) for r in results["comparison"]["runs"] if r["target"] == name]
        assert len(csvs) == 2
        assert row.requests == sum(int(c["Request Count"]) for c in csvs)
        assert row.failures == sum(int(c["Failure Count"]) for c in csvs)
        rps = [float(c["Requests/s"]) for c in csvs]
        assert (row.rps.median, row.rps.low, row.rps.high) == (statistics.median(rps), min(rps), max(rps))
        for key, column in report.PERCENTILE_COLUMNS.items():
            values = [float(c[column]) for c in csvs]
            assert row.latency[key].median == statistics.median(values)
            assert (row.latency[key].low, row.latency[key].high) == (min(values), max(values))
        assert row.max_ms == max(float(c["Max Response Time"]) for c in csvs)
    assert by_target["torch"].slo_rps == 398.5
    assert by_target["gw_torch"].slo_rps is None


def test_files_exist_and_html_parses(built: report.Built) -> None:
    for name in ["report.md", "report.html", "plots/latency_percentiles.png", "plots/latency_cdf.png",
                 "plots/step_load.png", "plots/gateway_overhead.png"]:  # fmt: skip
        path = built.out / name
        assert path.exists(), name
        assert path.stat().st_size > 0, name
    assert (built.out / "plots/latency_cdf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    parser = TagBalance()
    parser.feed((built.out / "report.html").read_text())
    parser.close()
    assert parser.stack == []
    summary = parser.tables["summary"]
    assert summary[0][:3] == ["target", "req/s", "p50 ms"]
    torch = next(r for r in summary if r[0] == "torch")
    row = next(r for r in built.rows if r.target == "torch")
    assert torch[7] == str(row.requests)
    assert torch[8] == str(row.failures)
    # the spread is shown, not hidden: median (min–max)
    assert "(" in torch[1]
    assert "–" in torch[1]


def test_markdown_has_the_summary_and_gateway_reconciliation(built: report.Built) -> None:
    text = (built.out / "report.md").read_text()
    assert built.summary_markdown in text
    gateway = json.loads((built.out / "gateway_stats.json").read_text())["models"]["digits"]["torch"]["since_reset"]
    assert f"| torch | 1780 | {gateway['count']} |" in text
    assert "TF server: **duoserve-compat**" in text
    assert "max req/s at p99 ≤ 200 ms" in text


def test_gateway_overhead_uses_both_sides(built: report.Built) -> None:
    results = json.loads((built.out / "results.json").read_text())
    (row,) = report.overhead(built.out, results, built.rows)
    samples = {
        t: [
            x
            for r in results["comparison"]["runs"]
            if r["target"] == t
            for x in json.loads((built.out / r["samples"]).read_text())
        ]
        for t in ("torch", "gw_torch")
    }
    assert row["backend"] == "torch"
    assert row["overhead_p50_ms"] == pytest.approx(
        statistics.median(samples["gw_torch"]) - statistics.median(samples["torch"])
    )


def test_report_modules_never_import_locust_or_gevent() -> None:
    code = (
        "import sys, loadtests.report, loadtests.slo, loadtests.payload, loadtests.checks, loadtests.profile, "
        "loadtests.targets, loadtests.envinfo, loadtests.__main__; "
        "bad = [m for m in ('gevent', 'locust') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_rebuild_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(FIXTURE, out)
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "report", str(out)], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "| torch |" in done.stdout
    assert (out / "report.html").exists()
