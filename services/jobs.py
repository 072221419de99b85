"""How a conversion step runs in a framework's own process: a job file in, a result file out.

``duoserve models add`` never imports a framework: it writes a job (a list of tasks), runs
``python -m services.torch_api.convert JOB`` or ``python -m services.tf_api.convert JOB``,
and reads the result: each task's answer, or the first failure as one line (the
exception's message) plus the traceback for the log. Tensors travel as ``.npz`` files whose
keys are ``<case>/<tensor>`` (a case is one input batch: ``batch 7``, ``sample``).
numpy and the standard library only.
"""

from __future__ import annotations

import functools
import json
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

Task = dict[str, Any]
Handler = Callable[[Task], dict[str, Any]]
Cases = dict[str, dict[str, np.ndarray]]


#: Seconds one in-process timing may take (at least :data:`MIN_CALLS` calls are made whatever it takes).
TIME_BUDGET_S = 3.0
MIN_CALLS = 5
MAX_CALLS = 100


class StepError(Exception):
    """A task failed in a way the user can act on; the message is the one line they read."""


def save_cases(path: Path, cases: Mapping[str, Mapping[str, np.ndarray]]) -> Path:
    """Write tensors per case as one ``.npz`` (keys ``case/name``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {
        f"{case}/{name}": value for case, tensors in cases.items() for name, value in tensors.items()
    }
    np.savez(path, **arrays)
    return path


def load_cases(path: Path) -> Cases:
    """Read what :func:`save_cases` wrote."""
    cases: Cases = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            case, _, name = key.partition("/")
            cases.setdefault(case, {})[name] = data[key]
    return cases


def time_calls(call: Callable[[], object]) -> tuple[float, int]:
    """The median milliseconds of ``call()`` in process, and how many calls it is the median of.

    Two warm-up calls, then at least :data:`MIN_CALLS`, more while :data:`TIME_BUDGET_S` lasts
    (at most :data:`MAX_CALLS`): the source model and every converted artifact are timed the
    same way, one after the other, so their ratio says what a conversion costs.
    """
    from contract.latency import percentiles_ms

    call()
    call()
    seconds: list[float] = []
    deadline = time.perf_counter() + TIME_BUDGET_S
    while len(seconds) < MIN_CALLS or (len(seconds) < MAX_CALLS and time.perf_counter() < deadline):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    median = percentiles_ms(seconds, (50.0,))["p50_ms"]
    assert median is not None
    return median, len(seconds)


def timed_cases(task: Task, run_case: Callable[[dict[str, np.ndarray]], object], cases: Cases) -> dict[str, Any]:
    """``{"latency_ms": {case: [median ms, calls]}}`` for each case the task's ``time`` list names ({} without one)."""
    found: dict[str, list[float]] = {}
    for case in task.get("time") or []:
        if case in cases:
            found[case] = list(time_calls(functools.partial(run_case, cases[case])))
    return {"latency_ms": found} if found else {}


def main(handlers: Mapping[str, Handler], argv: list[str] | None = None) -> int:
    """Run the tasks of the job file ``argv[0]``; write ``{"ok", "results" | "error", "detail"}`` to its ``result``."""
    args = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(args[0]).read_text())
    result_path = Path(job["result"])
    results: list[dict[str, Any]] = []
    try:
        for task in job["tasks"]:
            handler = handlers.get(task["op"])
            if handler is None:
                raise StepError(f"unknown task {task['op']!r}")
            results.append(handler(task))
    except Exception as exc:  # noqa: BLE001 - every failure becomes the step's one-line answer
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not isinstance(exc, StepError):
            message = f"{type(exc).__name__}: {message}"
        answer = {"ok": False, "error": message[:1000], "detail": traceback.format_exc()[-6000:], "results": results}
    else:
        answer = {"ok": True, "results": results}
    result_path.write_text(json.dumps(answer))
    return 0
