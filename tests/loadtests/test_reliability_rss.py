"""The soak row keeps the gateway's RSS series (seconds, MB, fds), in the row's JSON and as CSV."""

from __future__ import annotations

from pathlib import Path

from loadtests.reliability.monitor import ProcessSample, Watch
from loadtests.reliability.scenarios import rss_series, write_rss


def test_the_rss_series_is_kept_with_the_row(tmp_path: Path) -> None:
    watch = Watch(pid=1, gateway="http://127.0.0.1:1")
    watch.process += [
        ProcessSample(100.0, 80 * 2**20, 45),
        ProcessSample(101.0, 81 * 2**20, 46),
        ProcessSample(700.04, 88.6 * 2**20, 47),
    ]
    series = rss_series(watch)
    assert series == [
        {"t_s": 0.0, "rss_mb": 80.0, "fds": 45},
        {"t_s": 1.0, "rss_mb": 81.0, "fds": 46},
        {"t_s": 600.0, "rss_mb": 88.6, "fds": 47},
    ]
    write_rss(series, tmp_path / "soak-rss.csv")
    assert (tmp_path / "soak-rss.csv").read_text().splitlines() == ["t_s,rss_mb,fds", "0.0,80.0,45", "1.0,81.0,46",
                                                                    "600.0,88.6,47"]  # fmt: skip
    assert rss_series(Watch(pid=1, gateway="x")) == []
