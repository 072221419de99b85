"""``python -m examples zoo``: build each zoo model, add it, serve it through the gateway, check the answers, tabulate.

Per model, into its own artifacts root (``artifacts/zoo/`` unless ``--root``):

1. build the source file (:func:`examples.runner.build`) and give it to ``duoserve models
   add`` (``--replace``); a refusal is recorded as its one line and the zoo goes on (a model
   refused now that was added before is removed, so the root holds what today's converters make);
2. serve the added models, a few at a time (:data:`GROUP`), with the stack the tests use
   (:func:`stack.scratch.running_stack`) on a view of the root holding only those models, on
   every backend that has an artifact (``torch``: the ``.mar``; ``torch_ort``: the ``_ort.mar``;
   ``tf``: the SavedModel); a missing artifact is recorded, not served;
3. send seeded rows to each backend through the gateway and compare the answer with the
   source model's own runtime (:func:`stack.reference.source_answers`): status, shape, max
   abs difference against the manifest's tolerance.

Everything is recorded in ``<root>/zoo.json`` (a model whose recipe has not changed is not
converted again) and :func:`table` renders it into the marked section of ``docs/models.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np

from contract.artifacts import default_root, write_json
from contract.manifest import Manifest, ModelEntry, read_manifest
from contract.tensors import read_outputs, request_body, sample_inputs
from examples.runner import REPO, Example, ExampleError, _last, _models_add, build
from services.tf_api.config import render_models_config
from stack.reference import source_answers
from stack.scratch import Stack, running_stack

from . import ZOO

STATE = "zoo.json"
DOC = REPO / "docs" / "models.md"
BEGIN = "<!-- zoo:begin: `python -m examples zoo` writes this section; edits here are lost -->"
END = "<!-- zoo:end -->"
#: Models served by one stack: each archive is a TorchServe worker process (torch and all).
GROUP = 4
#: Backend -> the artifacts it may serve (any one of them).
BACKENDS: dict[str, tuple[str, ...]] = {
    "torch": ("mar",), "torch_ort": ("mar_ort",), "triton": ("torchscript", "torch_export"), "triton_ort": ("onnx",),
    "tf": ("tf",),
}  # fmt: skip
ROWS, SEED = 3, 21
Say = Callable[[str], None]


def default_zoo_root() -> Path:
    """``artifacts/zoo/`` (beside the built artifacts, never mixed with them)."""
    return default_root() / "zoo"


def read_state(root: Path) -> dict[str, Any]:
    path = root / STATE
    return dict(json.loads(path.read_text())) if path.exists() else {}


def _save(root: Path, name: str, record: dict[str, Any]) -> None:
    state = read_state(root)
    state[name] = record
    write_json(root / STATE, state)


def _up_to_date(example: Example, root: Path, record: dict[str, Any] | None) -> bool:
    if record is None or record.get("recipe") != example.recipe():
        return False
    entry = read_manifest(root, missing_ok=True).models.get(example.name)
    if not record["added"]:
        return entry is None
    return entry is not None and all((root / r.path).exists() for r in entry.artifacts.values())


def add_one(example: Example, root: Path, *, force: bool = False, say: Say = print) -> dict[str, Any]:
    """Build and add one zoo model; its record (added or the refusal, converters, seconds)."""
    record: dict[str, Any] | None = read_state(root).get(example.name)
    if not force and _up_to_date(example, root, record):
        say(f"{example.name}: up to date ({'added' if record and record['added'] else 'refused'})")
        return dict(record or {})
    log = REPO / "logs" / "zoo" / f"{example.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    say(f"{example.name}: building ({example.summary}); log: {log}")
    record = {
        "recipe": example.recipe(),
        "family": example.family,
        "command": f"duoserve models add {example.name} {' '.join(example.add)}",
        "added": False,
        "refusal": None,
        "build_s": None,
        "add_s": None,
        "served": {},
    }
    try:
        record["build_s"] = round(build(example, log), 1)
    except ExampleError as exc:
        record["refusal"] = f"the build failed: {exc}"
        _forget(example.name, root, log)
        _save(root, example.name, record)
        say(f"{example.name}: {record['refusal']}")
        return record
    started = time.monotonic()
    done = _models_add(example, (*example.add, "--replace"), root, log)
    record["add_s"] = round(time.monotonic() - started, 1)
    if done.returncode == 0:
        record["added"] = True
        made_by = read_manifest(root).models[example.name].made_by
        say(f"{example.name}: added in {record['add_s']} s ({', '.join(f'{k}: {v}' for k, v in made_by.items())})")
    else:
        record["refusal"] = _last(done.stderr).removeprefix("duoserve: ")
        _forget(example.name, root, log)
        say(f"{example.name}: refused in {record['add_s']} s: {record['refusal']}")
    _save(root, example.name, record)
    return record


def _forget(name: str, root: Path, log: Path) -> None:
    """Remove an entry an earlier run added, so the root holds what today's converters make."""
    if name in read_manifest(root, missing_ok=True).models:
        cmd = [sys.executable, "-m", "stack.models.cli", "models", "remove", name, "--root", str(root)]
        with log.open("a") as out:
            subprocess.run(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, check=False)


def backends_of(entry: ModelEntry) -> list[str]:
    """The backends that can serve ``entry``: those it was registered for whose artifact it has."""
    return [b for b in entry.backends if b in BACKENDS and any(k in entry.artifacts for k in BACKENDS[b])]


def _view(root: Path, manifest: Manifest, names: list[str], view: Path) -> None:
    """An artifacts root holding only ``names`` (hard links to ``root``'s files), its TF models.config included."""
    subset = Manifest(models={n: manifest.models[n] for n in names})
    for name in names:
        for record in subset.models[name].artifacts.values():
            src, dst = root / record.path, view / record.path
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, copy_function=os.link)
            else:
                os.link(src, dst)
    tf_models = [n for n in names if "tf" in subset.models[n].artifacts]
    config = view / "tf" / "models.config"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(render_models_config(tf_models))
    subset.write(view / "manifest.json")


def _ask(stack: Stack, entry: ModelEntry, backend: str, inputs: dict[str, np.ndarray]) -> httpx.Response:
    fmt: Literal["row", "columnar"] = "columnar" if backend == "tf" and len(entry.inputs) > 1 else "row"
    return httpx.post(
        f"{stack.info.gateway}/v1/models/{entry.name}/predict", content=json.dumps(request_body(inputs, fmt)),
        headers={"Content-Type": "application/json", "X-Backend": backend}, timeout=120,
    )  # fmt: skip


def check_served(stack: Stack, root: Path, entry: ModelEntry) -> dict[str, dict[str, Any]]:
    """Each backend's answer to the same seeded rows, against the source runtime's: status, shapes, max abs."""
    rows = min(ROWS, entry.max_batch)
    inputs = sample_inputs(entry, rows, seed=SEED)
    want = source_answers(root, entry, inputs)
    tolerance = min((p.tolerance_abs for p in entry.parity.values()), default=1e-4)
    results: dict[str, dict[str, Any]] = {
        backend: {"ok": False, "status": None, "error": f"no {' or '.join(kinds)} artifact"}
        for backend, kinds in BACKENDS.items()
        if not any(k in entry.artifacts for k in kinds)
    }
    for backend in backends_of(entry):
        response = _ask(stack, entry, backend, inputs)
        result: dict[str, Any] = {"status": response.status_code, "tolerance": tolerance}
        try:
            got = read_outputs(response.json(), entry, rows) if response.status_code == 200 else {}
        except (ValueError, TypeError) as exc:
            result["error"] = str(exc)[:300]
            got = {}
        if response.status_code != 200:
            result["error"] = response.text[:300]
        result["backend"] = response.json().get("backend") if response.status_code == 200 else None
        result["shapes"] = {n: list(v.shape) for n, v in got.items()}
        result["want_shapes"] = {n: list(v.shape) for n, v in want.items()}
        if got and all(got[n].shape == v.shape for n, v in want.items() if n in got) and set(got) == set(want):
            result["max_abs"] = max(float(np.abs(got[n] - v.astype(np.float64)).max()) for n, v in want.items())
        else:
            result["max_abs"] = None
        result["ok"] = result["max_abs"] is not None and result["max_abs"] <= tolerance
        results[backend] = result
    return results


def serve(root: Path, names: list[str], *, group: int = GROUP, say: Say = print) -> None:
    """Serve the added ``names``, ``group`` at a time, check every backend's answers; recorded in ``zoo.json``."""
    manifest = read_manifest(root, missing_ok=True)
    added = [n for n in names if n in manifest.models and read_state(root).get(n, {}).get("added")]
    for start in range(0, len(added), group):
        chunk = added[start : start + group]
        without_tf = [n for n in chunk if "tf" not in manifest.models[n].artifacts]
        for name in without_tf:  # the TF server's readiness waits for every model; nothing to serve it with
            _record_served(root, name, {"tf": {"ok": False, "error": "no tf artifact"}})
        chunk = [n for n in chunk if n not in without_tf]
        if not chunk:
            continue
        archives = [f"{n}{suffix}" for n in chunk for suffix, kind in (("", "mar"), ("_ort", "mar_ort"))
                    if kind in manifest.models[n].artifacts]  # fmt: skip
        say(f"zoo: serving {', '.join(chunk)} (TorchServe and Triton: {', '.join(archives)}; TF server; gateway)")
        with tempfile.TemporaryDirectory(prefix="serve-", dir=root) as work:
            view = Path(work) / "artifacts"
            _view(root, manifest, chunk, view)
            try:
                # Triton's model names are TorchServe's archive names: both serve the same artifacts
                loaded = ",".join(archives)
                with running_stack(Path(work) / "stack", loaded, view, triton_models=loaded) as stack:
                    for name in chunk:
                        results = check_served(stack, view, manifest.models[name])
                        _record_served(root, name, results)
                        say(f"{name}: " + ", ".join(_served_text(b, r) for b, r in results.items()))
            except RuntimeError as exc:
                line = str(exc).strip().splitlines()[0] if str(exc).strip() else "the stack failed"
                for name in chunk:
                    _record_served(root, name, {"stack": {"ok": False, "error": line}})
                say(f"zoo: the stack serving {', '.join(chunk)} failed: {str(exc)[-3000:]}")


def _record_served(root: Path, name: str, results: dict[str, dict[str, Any]]) -> None:
    state = read_state(root)
    state[name]["served"] = results
    write_json(root / STATE, state)


def _served_text(backend: str, result: dict[str, Any]) -> str:
    if result.get("max_abs") is not None:
        return f"{backend} {'✓' if result['ok'] else '✗'} {result['max_abs']:.1e}"
    status = f" {result['status']}" if result.get("status") else ""
    return f"{backend} ✗{status} {str(result.get('error', ''))[:120]}"


def run(names: list[str], root: Path, *, force: bool = False, group: int = GROUP, say: Say = print) -> dict[str, Any]:
    """Add, serve and check ``names``; the state recorded in ``<root>/zoo.json``."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        add_one(ZOO[name], root, force=force, say=say)
    serve(root, names, group=group, say=say)
    return read_state(root)


# -- the coverage table --------------------------------------------------------------------------------

FORMATS = {".keras": "`.keras`", ".pt2": "torch.export `.pt2`", ".pt": "TorchScript `.pt`", "": "SavedModel"}
_SIDES = (("torch", ("torchscript", "torch_export")), ("ONNX", ("onnx",)), ("TF", ("tf",)))


def _artifact_cell(kinds: tuple[str, ...], entry: ModelEntry) -> str:
    """The converter that made this side, its parity and its in-process time against the source's; or why
    it is missing (partial registration), as the manifest records them."""
    present = [k for k in kinds if k in entry.artifacts]
    if not present:
        why = next((entry.missing[k] for k in kinds if k in entry.missing), None)
        return f"**missing**: {why[:240]}" if why else "**missing**"
    kind = present[0]
    parity = entry.parity.get(kind)
    if parity is None:
        return "the source (reference)"
    slowdown = entry.slowdown(kind)
    timing = f"; {slowdown:.2f}× the source's time" if slowdown is not None else ""
    return f"{entry.made_by.get(kind, '?')}: {parity.max_abs:.1e}{timing}"


def _served_cell(record: dict[str, Any]) -> str:
    served = record.get("served") or {}
    if not served:
        return "-"
    order = [*BACKENDS, *sorted(set(served) - set(BACKENDS))]
    return "; ".join(_served_text(b, served[b]) for b in order if b in served)


def table(root: Path, names: list[str] | None = None) -> str:
    """The coverage table (markdown) of the zoo models recorded in ``root``."""
    state = read_state(root)
    manifest = read_manifest(root, missing_ok=True)
    lines = [
        "| model | family | source | torch artifact (converter: max abs; in-process time) | ONNX (same) "
        "| TF (same) | convert s | served through the gateway (max abs vs the source) |",
        "| --- | --- | --- | --- | --- | --- | ---: | --- |",
    ]
    for name in names or list(ZOO):
        record = state.get(name)
        if record is None:
            continue
        head = f"| {name} | {record['family']} | {FORMATS[Path(ZOO[name].add[0]).suffix]}"
        seconds = record["add_s"] if record["add_s"] is not None else "-"
        entry = manifest.models.get(name)
        if not record["added"] or entry is None:
            refusal = (record["refusal"] or "not added").replace("|", "\\|")
            lines.append(f"{head} | refused: {refusal} | | | {seconds} | no |")
            continue
        cells = [_artifact_cell(kinds, entry) for _, kinds in _SIDES]
        lines.append(f"{head} | {' | '.join(cells)} | {seconds} | {_served_cell(record)} |")
    return "\n".join(lines)


def write_table(root: Path, doc: Path = DOC) -> None:
    """Replace the marked zoo section of ``doc`` with :func:`table` (appended with its heading the first time)."""
    text = doc.read_text()
    body = f"{BEGIN}\n\n{table(root)}\n\n{END}"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        text = before + body + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n## The zoo: coverage\n\n{body}\n"
    doc.write_text(text)


__all__ = ["GROUP", "ZOO", "add_one", "check_served", "default_zoo_root", "run", "serve", "table", "write_table"]
