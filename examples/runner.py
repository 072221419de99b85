"""Build the examples, show where a converter refuses them, and add them with ``duoserve models add``.

An example is converted once per recipe, as ``make artifacts`` builds: the recipe hashes the
example's own files and every file of the conversion path (converters, workers, their venv
pins). ``<root>/examples.json`` records, per example, its recipe, the build and conversion
times and each refusal shown on the way, so tests and docs read them without converting again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.artifacts import sha256_text, write_json
from contract.manifest import read_manifest
from stack.models.converters import converter_venv

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
NOBUCO_VENV = REPO / ".venv-nobuco"
NOBUCO_REQUIREMENTS = HERE / "nobuco.requirements.txt"
STATE = "examples.json"
#: The files every conversion depends on, beside the example's own.
CONVERSION_FILES = (
    "examples/common.py",
    "examples/nobuco.requirements.txt",
    "stack/models/[!c_]*.py",  # every module but cli.py (and __init__/__main__), which only print
    "stack/models/converters.py",
    "stack/models/conversion.py",
    "services/torch_api/aten_graph.py",
    "services/tf_api/aten/*.py",
    "stack/models/onnx2tf.requirements.txt",
    "services/torch_api/convert.py",
    "services/torch_api/onnx2torch_ops.py",
    "services/torch_api/export.py",
    "services/torch_api/handler.py",
    "services/tf_api/convert.py",
    "services/jobs.py",
    "contract/manifest.py",
    "contract/tensors.py",
)


@dataclass(frozen=True)
class Example:
    """One example: how its source is built, what ``models add`` refuses on the way, what it takes."""

    name: str
    summary: str
    build: str  # module run as ``python -m MODULE OUT_DIR`` in the main venv
    add: tuple[str, ...]  # ``models add NAME ...`` arguments; names of files in OUT_DIR are made absolute
    tf_side: str | None = None  # module run in the nobuco venv, for a --pair
    refused: tuple[tuple[str, ...], ...] = field(default_factory=tuple)  # attempts shown to be refused
    #: torch -> TF routes compared by ``python -m examples converters``: route -> (nobuco module or None, args)
    routes: dict[str, tuple[str | None, tuple[str, ...]]] = field(default_factory=dict)
    #: the zoo (:mod:`examples.zoo`): its family, the folder under examples/ that holds the builder
    #: (default: the example's name) and the builder's arguments before OUT_DIR
    family: str = ""
    home: str | None = None
    build_args: tuple[str, ...] = ()

    @property
    def dir(self) -> Path:
        return HERE / (self.home or self.name)

    @property
    def out(self) -> Path:
        return self.dir / "out" if self.home is None else self.dir / "out" / self.name

    def recipe(self) -> str:
        own = sorted(self.dir.rglob("*.py")) if self.home is None else [REPO / f"{self.build.replace('.', '/')}.py"]
        files = own + [p for pattern in CONVERSION_FILES for p in sorted(REPO.glob(pattern))]
        parts = [f"{p.relative_to(REPO)}:{p.read_text()}" for p in files]
        zoo = (json.dumps(self.build_args),) if self.build_args else ()  # the examples' recipes stay as they were
        return sha256_text(json.dumps(self.add), json.dumps(self.refused), *zoo, *parts)


RNN_INPUTS = ("--input", "x:-1,-1,10:float32", "--input", "lengths:-1:int64:1:50", "--max-length", "50")
BERT_INPUTS = ("--input", "input_ids:-1,-1:int64:0:999", "--input", "attention_mask:-1,-1:int64:0:1")
EXAMPLES: dict[str, Example] = {
    e.name: e
    for e in (
        Example(
            "dynrnn",
            "the article's DynamicRNN: a GRU over variable-length sequences (x [N,T,10], lengths [N]), from PyTorch",
            "examples.dynrnn.build",
            ("--pair", "dynrnn.pt", "dynrnn_savedmodel", *RNN_INPUTS, "--sample", "sample.npz"),
            tf_side="examples.dynrnn.tf_side",
            refused=(("dynrnn.pt", *RNN_INPUTS),),
            routes={
                "automatic": (None, ("dynrnn.pt", *RNN_INPUTS)),
                "nobuco": ("examples.dynrnn.tf_side", ("--pair", "dynrnn.pt", "dynrnn_savedmodel", *RNN_INPUTS)),
            },
        ),
        Example(
            "mobilenet",
            "torchvision's MobileNetV3-Small (weights=None, seeded), NCHW x [N,3,224,224], from PyTorch",
            "examples.mobilenet.build",
            ("mobilenet.pt2", "--max-batch", "8", "--sample", "sample.npz"),
            routes={
                "automatic": (None, ("mobilenet.pt2", "--max-batch", "8")),
                "nobuco": (
                    "examples.mobilenet.tf_side",
                    ("--pair", "mobilenet.pt2", "mobilenet_savedmodel", "--max-batch", "8"),
                ),
            },
        ),
        Example(
            "textcls",
            "a Keras text classifier with an embedding (tokens [N,T] int64), from the TF side",
            "examples.textcls.build",
            (
                "textcls_gelu.keras",
                "--input",
                "tokens:-1,-1:int64:0:999",
                "--max-length",
                "64",
                "--sample",
                "sample.npz",
            ),
        ),
        Example(
            "tinybert",
            "a tiny BERT encoder (input_ids, attention_mask [N,T] int64 -> pooled, logits), from PyTorch",
            "examples.tinybert.build",
            ("tinybert.pt2", *BERT_INPUTS, "--sample", "sample.npz"),
            tf_side="examples.tinybert.tf_side",
            routes={
                "automatic": (None, ("tinybert.pt2", *BERT_INPUTS)),
                "nobuco": (
                    "examples.tinybert.tf_side",
                    ("--pair", "tinybert.pt2", "tinybert_savedmodel", *BERT_INPUTS),
                ),
            },
        ),
    )
}


class ExampleError(Exception):
    """An example did not build or convert as it should; the message says which step and why."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _run(cmd: list[str], log: Path, what: str) -> subprocess.CompletedProcess[str]:
    with log.open("a") as out:
        out.write(f"\n=== {what}: {' '.join(cmd)}\n")
        out.flush()
        return subprocess.run(cmd, cwd=REPO, env=_env(), stdout=out, stderr=subprocess.PIPE, text=True, check=False)


def _models_add(example: Example, args: tuple[str, ...], root: Path, log: Path) -> subprocess.CompletedProcess[str]:
    resolved = [str(example.out / a) if (example.out / a).exists() else a for a in args]
    cmd = [sys.executable, "-m", "stack.models.cli", "models", "add", example.name, *resolved, "--root", str(root)]
    return _run(cmd, log, "duoserve models add")


def read_state(root: Path) -> dict[str, Any]:
    path = root / STATE
    return json.loads(path.read_text()) if path.exists() else {}


def up_to_date(example: Example, root: Path) -> bool:
    state = read_state(root).get(example.name)
    if state is None or state.get("recipe") != example.recipe():
        return False
    manifest = read_manifest(root, missing_ok=True)
    entry = manifest.models.get(example.name)
    return entry is not None and all((root / r.path).exists() for r in entry.artifacts.values())


def build(example: Example, log: Path) -> float:
    """Build the example's source files into its ``out/``; seconds taken."""
    started = time.monotonic()
    example.out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", example.build, *example.build_args, str(example.out)]
    done = _run(cmd, log, f"build {example.name}")
    if done.returncode != 0:
        raise ExampleError(f"{example.name}: the build failed: {_last(done.stderr)} (log: {log})")
    if example.tf_side:
        tf_side(example, example.tf_side, log)
    return time.monotonic() - started


def tf_side(example: Example, module: str, log: Path) -> None:
    """Run a nobuco TF-side builder in the nobuco venv."""
    venv = converter_venv(NOBUCO_VENV, NOBUCO_REQUIREMENTS, torch_from_main=True)
    done = _run([str(venv / "bin" / "python"), "-m", module, str(example.out)], log, "TF side (nobuco)")
    if done.returncode != 0:
        raise ExampleError(f"{example.name}: nobuco's TF side failed: {_last(done.stderr)} (log: {log})")


def _last(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def add(example: Example, root: Path, *, force: bool = False, say: Any = print) -> dict[str, Any]:
    """Build, show the refusals, add; recorded in ``<root>/examples.json``. Skipped when up to date."""
    if not force and up_to_date(example, root):
        say(f"{example.name}: up to date")
        return dict(read_state(root)[example.name])
    log = REPO / "logs" / "examples" / f"{example.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    say(f"{example.name}: building ({example.summary}); log: {log}")
    build_s = build(example, log)
    manifest = root / "manifest.json"
    attempts = []
    for args in example.refused:
        before = manifest.read_bytes() if manifest.exists() else None
        done = _models_add(example, (*args, "--replace"), root, log)  # refused for what it is, not its name
        after = manifest.read_bytes() if manifest.exists() else None
        if done.returncode != 1 or before != after:
            raise ExampleError(
                f"{example.name}: `models add {' '.join(args)}` should be refused and change nothing; "
                f"it exited {done.returncode}" + ("" if before == after else " and changed the manifest")
            )
        refusal = _last(done.stderr).removeprefix("duoserve: ")
        attempts.append({"command": f"duoserve models add {example.name} {' '.join(args)}", "refusal": refusal})
        say(f"{example.name}: refused as shown in examples/README.md: {refusal[:160]}")
    started = time.monotonic()
    done = _models_add(example, (*example.add, "--replace"), root, log)
    if done.returncode != 0:
        raise ExampleError(f"{example.name}: models add failed: {_last(done.stderr)} (log: {log})")
    record = {
        "recipe": example.recipe(),
        "build_s": round(build_s, 1),
        "add_s": round(time.monotonic() - started, 1),
        "command": f"duoserve models add {example.name} {' '.join(example.add)}",
        "refused": attempts,
    }
    info = example.out / "build.json"
    if info.exists():
        record["build"] = json.loads(info.read_text())
    state = read_state(root)
    state[example.name] = record
    write_json(root / STATE, state)
    say(f"{example.name}: added in {record['add_s']} s")
    return record


def compare_converters(examples: list[Example], work: Path, say: Any = print) -> list[dict[str, Any]]:
    """Each torch example through each torch -> TF route (onnx2tf on the ONNX file, nobuco on the module),
    added to a scratch root: whether the parity gate passed, the TF side's worst difference, the time."""
    rows: list[dict[str, Any]] = []
    for example in examples:
        if not example.routes:
            continue
        log = REPO / "logs" / "examples" / f"{example.name}-converters.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        build(example, log)
        for route, (module, args) in example.routes.items():
            started = time.monotonic()
            try:
                if module is not None:
                    tf_side(example, module, log)
            except ExampleError as exc:
                rows.append({"example": example.name, "route": route, "ok": False, "said": str(exc), "seconds": None})
                continue
            root = work / f"{example.name}-{route}"
            done = _models_add(example, args, root, log)
            row: dict[str, Any] = {
                "example": example.name,
                "route": route,
                "ok": done.returncode == 0,
                "seconds": round(time.monotonic() - started, 1),
                "said": None if done.returncode == 0 else _last(done.stderr).removeprefix("duoserve: "),
            }
            if done.returncode == 0:
                entry = read_manifest(root).models[example.name]
                row["tf_max_abs"] = max(f.max_abs for f in entry.parity["tf"].outputs.values())
                row["tf_bytes"] = sum(p.stat().st_size for p in (root / entry.artifacts["tf"].path).rglob("*"))
            rows.append(row)
            say(f"{example.name} via {route}: " + ("ok" if row["ok"] else f"refused: {row['said']}"))
    return rows


def figures(root: Path) -> str:
    """Markdown tables of the examples in ``root``: conversion times, artifact sizes, parity per artifact and output."""
    state = read_state(root)
    manifest = read_manifest(root)
    lines = [
        "| example | build s | models add s | source | artifacts (MB) |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for name in EXAMPLES:
        if name not in manifest.models or name not in state:
            continue
        entry, record = manifest.models[name], state[name]
        sizes = ", ".join(
            f"{kind} {_size(root / r.path) / 1e6:.2f}"
            for kind, r in sorted(entry.artifacts.items())
            if kind != "sample"
        )
        source = f"{entry.source.format} ({', '.join(entry.source.files)})" if entry.source else "-"
        lines.append(f"| {name} | {record['build_s']} | {record['add_s']} | {source} | {sizes} |")
    lines += [
        "",
        "| example | artifact | checked against | output | max abs | max rel | batches | sample rows |",
        "| --- | --- | --- | --- | ---: | ---: | --- | ---: |",
    ]
    for name in EXAMPLES:
        found = manifest.models.get(name)
        for kind, parity in (found.parity if found else {}).items():
            for output, f in parity.outputs.items():
                batches = ", ".join(map(str, parity.batches))
                lines.append(
                    f"| {name} | {kind} | {parity.against} | {output} | {f.max_abs:.1e} | {f.max_rel:.1e} | {batches} "
                    f"| {parity.samples} |"
                )
    return "\n".join(lines)


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
