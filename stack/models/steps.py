"""Run one conversion step in the process (and, for onnx2tf, the venv) it needs, bounded in time.

Each step is a job file for a worker module (:mod:`services.jobs`): the torch worker, the
TF worker, the ONNX worker, the Keras-on-torch worker, or onnx2tf's own command in its
converter venv. A step that fails raises :class:`~stack.models.spec.RefusedError` with the
worker's one-line reason; the full output goes to the step log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .spec import RefusedError

REPO = Path(__file__).resolve().parents[2]
#: Seconds one step may take before it is stopped (a conversion of a large model takes minutes).
STEP_TIMEOUT_S = float(os.environ.get("DUOSERVE_STEP_TIMEOUT_S", "1800"))
#: A folder the tests give to hold an add while a step runs, so that an interrupt lands at a known point.
HOLD_ENV = "DUOSERVE_ADD_HOLD"

WORKERS = {
    "torch": "services.torch_api.convert",
    "tf": "services.tf_api.convert",
    "onnx": "stack.models.onnx_step",
    "keras_torch": "stack.models.keras_torch",
}


class Steps:
    """Runs the steps of one ``models add`` in ``work``; every step's output is appended to ``log``."""

    def __init__(self, work: Path, log: Path, python: str = sys.executable) -> None:
        self.work = work
        self.log = log
        self.python = python
        self.count = 0
        work.mkdir(parents=True, exist_ok=True)
        log.parent.mkdir(parents=True, exist_ok=True)

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(filter(None, [str(REPO), env.get("PYTHONPATH")])))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.update(extra or {})
        return env

    def _call(self, what: str, cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        with self.log.open("a") as log:
            log.write(f"\n=== {what}: {' '.join(cmd)}\n")
            log.flush()
            with subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True) as proc:
                try:
                    _hold(self.count, proc.pid)
                    code = proc.wait(timeout=STEP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    raise RefusedError(f"{what} took longer than {STEP_TIMEOUT_S:g} s and was stopped") from None
                except BaseException:  # Ctrl-C or a kill: the step goes with the add
                    proc.kill()
                    raise
            log.write(f"=== {what}: exit {code} after {time.monotonic() - started:.1f} s\n")
        return subprocess.CompletedProcess(cmd, code)

    def run(
        self, worker: str, tasks: list[dict[str, Any]], *, env: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Run ``tasks`` in ``worker``'s process; their answers, or RefusedError with the first failure."""
        self.count += 1
        job = self.work / f"job-{self.count}-{worker}.json"
        result = job.with_suffix(".result.json")
        job.write_text(json.dumps({"tasks": tasks, "result": str(result)}))
        done = self._call(f"{worker} step", [self.python, "-m", WORKERS[worker], str(job)], self._env(env))
        if not result.exists():
            raise RefusedError(f"the {worker} step died (exit {done.returncode}) before it answered; see {self.log}")
        answer = json.loads(result.read_text())
        if not answer["ok"]:
            with self.log.open("a") as log:
                log.write(answer.get("detail", ""))
            raise RefusedError(answer["error"])
        results: list[dict[str, Any]] = answer["results"]
        return results

    def command(self, what: str, cmd: list[str], *, env: dict[str, str] | None = None) -> str:
        """Run a converter's own command; RefusedError with its last meaningful line when it fails."""
        done = self._call(what, cmd, self._env(env))
        if done.returncode != 0:
            raise RefusedError(f"{what} failed: {last_error(self.log)}")
        return self.log.read_text(errors="replace")


def _hold(step: int, pid: int) -> None:
    """With ``DUOSERVE_ADD_HOLD=DIR``: while step 2's process runs, say so in ``DIR/held`` and wait for ``DIR/go``.

    The tests interrupt an add here, at a point it cannot pass without them.
    """
    folder = os.environ.get(HOLD_ENV)
    if not folder or step != 2:
        return
    Path(folder, "held").write_text(str(pid))
    while not Path(folder, "go").exists():
        time.sleep(0.05)


def last_error(log: Path) -> str:
    """The last line of a log that looks like an error (what a converter said before it gave up)."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if "===" in line:
            continue
        if any(word in line for word in ("Error", "error", "ERROR", "not supported", "Unsupported", "Exception")):
            return line[:500]
    return lines[-2][:500] if len(lines) > 1 else "no output"
