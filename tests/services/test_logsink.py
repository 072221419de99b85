"""Bounded logs: the rolling file, the wrapper a Process uses, and what every stack is configured to log."""

from __future__ import annotations

import signal
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from services.logsink import RotatingFile
from services.process import Process
from services.torch_api import launcher
from services.torch_api.launcher import java_command, log_env
from services.torch_api.settings import LOG4J2, TorchApiSettings

WRITER = (
    "import sys, time\n"
    "for i in range(int(sys.argv[1])):\n"
    "    sys.stdout.write(f'line {i:06d} ' + 'x' * 90 + '\\n')\n"
    "    sys.stdout.flush() if i % 50 == 0 else None\n"
)


def _sizes(log: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(log.parent.glob(log.name + "*"))}


def test_the_file_rolls_over_and_keeps_a_bounded_number_of_copies(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    sink = RotatingFile(log, max_bytes=1000, backups=2)
    for i in range(100):
        sink.write(f"{i:04d} {'y' * 45}\n".encode())  # 51 bytes a line: 5,100 bytes in all
    sink.write(b"z" * 2500)  # one write larger than the limit is cut, never over it
    sink.close()
    sizes = _sizes(log)
    assert sorted(sizes) == ["out.log", "out.log.1", "out.log.2"]
    assert all(size <= 1000 for size in sizes.values()), sizes
    assert (log.with_name("out.log.1")).read_bytes() == b"z" * 1000
    assert log.read_bytes() == b"z" * 500


def test_a_process_with_rotate_keeps_its_output_bounded(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    # 5,000 lines of 102 bytes (510 KB) into a 64 KB file with 2 copies: at most 192 KB kept, the newest lines last
    with Process("writer", [sys.executable, "-c", WRITER, "5000"], log, rotate=(64 * 1024, 2)) as proc:
        assert proc.popen.wait(60) == 0
    sizes = _sizes(log)
    assert sorted(sizes) == ["server.log", "server.log.1", "server.log.2"]
    assert all(size <= 64 * 1024 for size in sizes.values()), sizes
    assert log.read_text().splitlines()[-1].startswith("line 004999 ")


def test_the_wrapper_passes_signals_on_and_returns_the_status(tmp_path: Path) -> None:
    script = "import signal, sys, time\nprint('up', flush=True)\ntime.sleep(60)\n"
    proc = Process("sleeper", [sys.executable, "-c", script], tmp_path / "s.log", own_group=False, rotate=(4096, 1))
    proc.wait_ready(line="up", timeout_s=30)
    proc.signal(signal.SIGTERM)
    assert proc.popen.wait(30) == 128 + signal.SIGTERM


def test_torchserve_runs_with_the_production_logging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "_ts_home", lambda: tmp_path)  # importing ts leaks a file handle
    settings = TorchApiSettings(log_dir=tmp_path)
    cmd = java_command(settings, tmp_path / "config.properties", tmp_path)
    assert f"-Dlog4j.configurationFile={LOG4J2.as_uri()}" in cmd
    assert log_env(settings) == {
        "LOG_LOCATION": str(tmp_path),
        "METRICS_LOCATION": str(tmp_path),
        "DUOSERVE_TS_LOG_LEVEL": "warn",
        "DUOSERVE_TS_MODEL_LOG_LEVEL": "info",
        "DUOSERVE_TS_ACCESS_LOG": "off",
    }
    assert log_env(TorchApiSettings(log_dir=tmp_path, access_log=True))["DUOSERVE_TS_ACCESS_LOG"] == "info"
    default = TorchApiSettings(log_dir=tmp_path, logging="torchserve-default")
    assert not any("log4j" in arg for arg in java_command(default, tmp_path / "c", tmp_path))


def test_the_log4j2_configuration_bounds_every_file() -> None:
    root = ET.parse(LOG4J2).getroot()
    files = root.findall("./Appenders/RollingFile")
    assert {f.get("name") for f in files} == {"access_log", "model_log", "metrics_log", "ts_log"}
    for appender in files:
        assert appender.find("./Policies/SizeBasedTriggeringPolicy").get("size") == "10 MB"  # type: ignore[union-attr]
        assert appender.find("./DefaultRolloverStrategy").get("max") == "3"  # type: ignore[union-attr]
        assert "%i" in str(appender.get("filePattern"))  # a numbered set, not one file a day
    loggers = {lg.get("name"): lg for lg in root.findall("./Loggers/Logger")}
    assert loggers["ACCESS_LOG"].get("level") == "${env:DUOSERVE_TS_ACCESS_LOG:-off}"
    assert loggers["org.pytorch.serve"].get("level") == "${env:DUOSERVE_TS_LOG_LEVEL:-warn}"
    # nothing is written twice: every named logger stops at its own appenders
    assert all(lg.get("additivity") == "false" for name, lg in loggers.items() if lg.find("AppenderRef") is not None)
    console = root.find("./Appenders/Console/ThresholdFilter")
    assert console is not None
    assert console.get("level") == "error"


@pytest.mark.parametrize("bad", [["--max-bytes", "0"], ["--backups", "-1"]])
def test_the_wrapper_refuses_bad_limits(tmp_path: Path, bad: list[str]) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "services.logsink", *bad, str(tmp_path / "x.log"), "--", "true"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--max-bytes must be at least 1 and --backups at least 0" in result.stderr
