"""``duoserve models add``: bring a model in one framework, get both, proven equal, registered at once.

The source's format (:mod:`.formats`: its runtime is the parity reference) says how every
other artifact is made. The ONNX file also becomes the ``_ort`` archive. Every produced
artifact is run in its own runtime on the same seeded inputs (batch 1, 7 and the max batch,
dynamic axes at their maximum) and on ``--sample`` rows, and must agree with the reference
within the tolerance (:mod:`.parity`); otherwise nothing is registered, except that a model
is registered without its optional ONNX artifact when only that one cannot be made
faithfully (``ModelEntry.missing``). Everything is built in a staging root and committed at
once (:mod:`.register`).
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from contract.artifacts import artifact_path, sha256_path, sha256_text
from contract.manifest import (
    MODEL_NAME_PATTERN,
    NAME_PATTERN,
    ArtifactRecord,
    InProcessLatency,
    Manifest,
    ModelEntry,
    ParityRecord,
    SourceInfo,
    TensorSpec,
)
from contract.tensors import NUMPY_DTYPES, sample_inputs
from services.jobs import load_cases, save_cases
from stack.build import record, stages_of
from stack.builtins import BUILTINS

from . import converters
from .conversion import Conversion, Produced, Say
from .formats import ARTIFACT_FORMAT, SourceFormat, detect
from .parity import Gate, check_reference
from .register import commit, locked, staging_root
from .spec import Declared, RefusedError, dtype_of, merge_inputs, parse_input_option, sanitize
from .steps import REPO, Steps

#: Most instances one request may carry, unless --max-batch says otherwise.
DEFAULT_MAX_BATCH = 32
Cases = dict[str, dict[str, np.ndarray]]


@dataclass
class AddOptions:
    """What ``duoserve models add`` was asked."""

    name: str
    source: Path | None = None
    pair: tuple[Path, Path] | None = None
    inputs: list[str] = field(default_factory=list)
    sample: Path | None = None
    atol: float = 1e-4
    rtol: float | None = None
    max_batch: int | None = None
    max_length: int | None = None
    replace: bool = False


def read_sample(path: Path, inputs: tuple[TensorSpec, ...]) -> dict[str, np.ndarray]:
    """The ``--sample`` arrays, checked against the inputs (names, dtypes, shapes, row counts)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # noqa: BLE001 - any failure: not an .npz we can read
        raise RefusedError(f"--sample {path}: not an .npz of arrays ({str(exc).splitlines()[0]})") from None
    names = [t.name for t in inputs]
    if set(arrays) != set(names):
        raise RefusedError(f"--sample {path} holds {sorted(arrays)}; the model's inputs are {', '.join(names)}")
    rows = {len(a) if a.ndim else 0 for a in arrays.values()}
    if len(rows) != 1 or 0 in rows:
        raise RefusedError(f"--sample {path}: every input needs the same number of rows (≥ 1); got {sorted(rows)}")
    out: dict[str, np.ndarray] = {}
    for tensor in inputs:
        array = arrays[tensor.name]
        if not tensor.fits(tuple(array.shape[1:])):
            raise RefusedError(
                f"--sample {path}: {tensor.name} has rows of shape {list(array.shape[1:])}; "
                f"the model takes {tensor.shape_text()}"
            )
        kind = {"float32": "fiu", "float16": "fiu", "int64": "iu", "int32": "iu", "bool": "b"}[tensor.dtype]
        if array.dtype.kind not in kind:
            raise RefusedError(f"--sample {path}: {tensor.name} is {array.dtype}; the model takes {tensor.dtype}")
        out[tensor.name] = array.astype(NUMPY_DTYPES[tensor.dtype])
    return out


#: Rows of the case whose dynamic axes are shorter than their maximum (a model frozen to one length fails it).
SHORT_ROWS = 3


def parity_cases(entry: ModelEntry, sample: dict[str, np.ndarray] | None) -> Cases:
    """Seeded batches of 1, 7 and the max batch (dynamic axes at their maximum), a batch whose dynamic
    axes are at 3/5 of their maximum, then the sample in chunks."""
    sizes = sorted({1, min(7, entry.max_batch), entry.max_batch})
    cases: Cases = {f"batch {n}": sample_inputs(entry, n, seed=17) for n in sizes}
    if any(t.dynamic for t in entry.inputs):
        rows = min(SHORT_ROWS, entry.max_batch)
        full = sample_inputs(entry, rows, seed=19)
        cases[f"batch {rows}, shorter"] = {
            t.name: full[t.name][(slice(None), *(slice(0, max(1, m * 3 // 5)) if d == -1 else slice(None)
                                               for d, m in zip(t.shape, t.largest, strict=True)))]
            for t in entry.inputs
        }  # fmt: skip
    if sample is not None:
        rows = len(next(iter(sample.values())))
        for i, start in enumerate(range(0, rows, entry.max_batch)):
            cases[f"sample {i + 1}"] = {k: v[start : start + entry.max_batch] for k, v in sample.items()}
    return cases


def output_specs(reference: dict[str, np.ndarray], declared: dict[str, Declared]) -> tuple[TensorSpec, ...]:
    """The outputs' contract, from the reference run (dtypes, per-row shapes) and what the source declares dynamic."""
    specs = []
    for name, value in reference.items():
        dtype = dtype_of(str(value.dtype), f"output {name}")
        assert dtype is not None
        per_row = tuple(int(d) for d in value.shape[1:])
        known = declared.get(name)
        dynamic: list[int] = []
        if known is not None and known.shape is not None and len(known.shape) == value.ndim:
            dynamic = [i for i, d in enumerate(known.shape[1:]) if d is None]
        shape = tuple(-1 if i in dynamic else d for i, d in enumerate(per_row))
        specs.append(TensorSpec(name=name, dtype=dtype, shape=shape, max_shape=per_row if dynamic else None))
    return tuple(specs)


@dataclass
class Adder:
    """One ``models add`` run: its options, where it stages, its conversion and its log."""

    opts: AddOptions
    root: Path
    say: Say
    stage: Path = field(init=False)
    log_path: Path = field(init=False)
    conv: Conversion = field(init=False)
    #: "source" and each made artifact kind -> its in-process latency
    latency: dict[str, InProcessLatency] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stage = staging_root(self.root, self.opts.name)
        work = self.stage / "work"
        self.log_path = REPO / "logs" / "models" / f"{self.opts.name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        self.conv = Conversion(Steps(work, self.log_path), work, self.say, work / "cases.npz")

    def artifact(self, kind: str) -> Path:
        """Where ``kind`` of this model goes in the staging root."""
        return artifact_path(self.stage, self.opts.name, kind)

    def inspect(self, fmt: SourceFormat, path: Path) -> tuple[list[Declared], list[Declared] | None]:
        """The source's declared inputs and outputs (outputs None: it declares none, TorchScript)."""
        tasks: list[dict[str, Any]] = [{"op": "inspect", "format": fmt.key, "path": str(path)}]
        if fmt.key == "onnx":
            tasks.insert(0, {"op": "check", "path": str(path)})
        found = self.conv.steps.run(fmt.worker, tasks)[-1]
        inputs = [
            Declared.from_json({**t, "dtype": dtype_of(t.get("dtype"), f"input {t['name']}")}) for t in found["inputs"]
        ]
        if found.get("outputs") is None:
            return inputs, None
        outputs = [
            Declared.from_json(o if isinstance(o, dict) else {"name": o, "dtype": None, "shape": None})
            for o in found["outputs"]
        ]
        for tensor in outputs:
            dtype_of(tensor.dtype, f"output {tensor.name}")
        return inputs, outputs

    def run(
        self,
        fmt: SourceFormat,
        path: Path,
        entry: ModelEntry,
        label: str,
        outputs: list[str] | None = None,
        *,
        timed: str | None = None,
    ) -> Cases:
        """``path``'s outputs on every case, in its own runtime, named as ``entry`` (or ``outputs``) says.

        ``outputs`` empty: the model declares no names (TorchScript); they become ``output``/``output_<i>``.
        ``timed``: also time it in process at batch 1 and the max batch, recorded as ``latency[timed]``.
        """
        sizes = {1: "batch 1", entry.max_batch: f"batch {entry.max_batch}"}
        target = self.conv.work / f"{label}.npz"
        task = {
            "op": "run",
            "format": fmt.key,
            "path": str(path),
            "inputs": str(self.conv.cases),
            "out": str(target),
            "input_names": entry.input_names,
            "output_names": entry.output_names if outputs is None else outputs,
            "signature": entry.tf_signature,
            "time": list(sizes.values()) if timed else [],
        }
        (answer,) = self.conv.steps.run(fmt.worker, [task])
        if timed and "latency_ms" in answer:
            found = answer["latency_ms"]
            one, most = found[sizes[1]], found[sizes[entry.max_batch]]
            self.latency[timed] = InProcessLatency(
                runtime=fmt.runtime, batch_1_ms=one[0], max_batch=entry.max_batch, max_batch_ms=most[0],
                repeats=int(min(one[1], most[1])),
            )  # fmt: skip
        return load_cases(target)

    def gate(self, what: str, against: str, reference: Cases, candidate: Cases) -> ParityRecord:
        gate = Gate(what, against, self.opts.atol, self.opts.rtol)
        for case, outputs in reference.items():
            rows = len(next(iter(outputs.values())))
            gate.add(case, rows, outputs, candidate[case], sample=case.startswith("sample"))
        return gate.record()

    # -- the whole add ------------------------------------------------------------------------

    def _sources(self) -> tuple[SourceFormat, Path, tuple[SourceFormat, Path] | None]:
        """The source's format and path, and the ``--pair``'s TF side."""
        if self.opts.pair is None:
            assert self.opts.source is not None
            return detect(self.opts.source), self.opts.source, None
        torch_path, tf_path = self.opts.pair
        fmt, tf_fmt = detect(torch_path), detect(tf_path)
        if fmt.worker != "torch" or tf_fmt.worker != "tf":
            raise RefusedError(
                f"--pair takes a torch model (.pt or .pt2) first and a TF one (SavedModel or .keras) second; "
                f"got {fmt.key} and {tf_fmt.key}"
            )
        return fmt, torch_path, (tf_fmt, tf_path)

    def add(self) -> ModelEntry:
        opts = self.opts
        fmt, source, pair_tf = self._sources()
        self.say(f"{opts.name}: {source} ({fmt.runtime}); details in {self.log_path}")
        if fmt.key == "onnx":
            source = converters.normalize_onnx(self.conv, source)
        declared_in, declared_out = self.inspect(fmt, source)
        for tensor in declared_in:
            if not re.fullmatch(NAME_PATTERN, tensor.name):
                raise RefusedError(f"input {tensor.name!r} is not a name duoserve can serve (letters, digits, _)")
        inputs = merge_inputs(declared_in, [parse_input_option(t) for t in opts.inputs], opts.max_length)
        names = self._output_names(fmt, declared_out, pair_tf)
        max_batch = opts.max_batch or DEFAULT_MAX_BATCH
        sample = read_sample(opts.sample, inputs) if opts.sample else None
        draft = ModelEntry(
            name=opts.name,
            origin="user",
            inputs=inputs,
            outputs=tuple(TensorSpec(name=n, shape=(1,)) for n in names or ["pending"]),
            max_batch=max_batch,
        )
        save_cases(self.conv.cases, parity_cases(draft, sample))
        if pair_tf is not None and len(names) > 1:
            names = self._pair_order(fmt, source, pair_tf, draft, names)
        self.say(f"  reference: {fmt.runtime}, batches 1, 7, {max_batch}" + (", the sample" if sample else ""))
        reference = self.run(fmt, source, draft, "reference", outputs=names, timed="source")
        for case, outputs in reference.items():
            check_reference(case, outputs)
        declared = {d.name: d for d in declared_out or []}
        entry = draft.model_copy(update={"outputs": output_specs(next(iter(reference.values())), declared)})
        entry = ModelEntry.model_validate(entry.model_dump())
        self.conv.pair_tf = (pair_tf[0].key, pair_tf[1]) if pair_tf else None

        def gate(kind: str, path: Path) -> ParityRecord:
            """``path`` as artifact ``kind`` against the reference (the format's producer calls it on each try)."""
            runtime = ARTIFACT_FORMAT[kind]
            what = f"the {kind} artifact ({runtime.runtime}, made by {self.conv.made_by.get(kind, 'the user')})"
            self.say(f"  parity: {what}")
            try:
                candidate = self.run(runtime, path, entry, kind, timed=kind)
                return self.gate(what, fmt.runtime, reference, candidate)
            except RefusedError as exc:
                message = str(exc) if str(exc).startswith(what) else f"{what} fails: {exc}"
                raise RefusedError(message + self._hint(kind)) from None

        self.conv.gate = gate
        produced = fmt.produce(self.conv, entry, source)
        unchecked = [k for k, v in produced.items() if v is not None and k not in self.conv.parity]
        assert not unchecked, f"made but not gated: {unchecked}"
        return stage(self, entry, fmt, source, produced, self.conv.parity, sample)

    def _hint(self, kind: str) -> str:
        """What works instead when a converter's artifact is refused."""
        if kind == "tf" and self.conv.made_by.get("tf") == "onnx2tf":
            return "; bring the TF side yourself: duoserve models add NAME --pair TORCH_FILE TF_MODEL (docs/models.md)"
        return ""

    def _pair_order(
        self,
        fmt: SourceFormat,
        source: Path,
        pair_tf: tuple[SourceFormat, Path],
        draft: ModelEntry,
        names: list[str],
    ) -> list[str]:
        """The TF side's output names in the torch side's output order.

        A torch model returns its outputs by position, a TF signature by name: each torch
        output takes the name of the TF output of its shape that is closest to it (the
        parity gate then checks every one).
        """
        positional = [f"output_{i}" for i in range(len(names))]
        torch_side = next(iter(self.run(fmt, source, draft, "pair-torch", outputs=positional).values()))
        tf_side = next(iter(self.run(pair_tf[0], pair_tf[1], draft, "pair-tf", outputs=names).values()))
        ordered: list[str] = []
        for position in positional:
            value = torch_side[position]
            same = [n for n in names if n not in ordered and tf_side[n].shape == value.shape]
            if not same:
                shapes = ", ".join(f"{n} {list(v.shape)}" for n, v in tf_side.items())
                raise RefusedError(
                    f"--pair: the torch model's output {len(ordered)} has shape {list(value.shape)}; "
                    f"the TF model's outputs are {shapes}"
                )
            ordered.append(min(same, key=lambda n: float(np.abs(tf_side[n].astype(np.float64) - value).max())))
        return ordered

    def _output_names(
        self, fmt: SourceFormat, declared: list[Declared] | None, pair_tf: tuple[SourceFormat, Path] | None
    ) -> list[str]:
        if pair_tf is not None:
            _, tf_declared = self.inspect(*pair_tf)
            return [d.name for d in tf_declared or []]
        if not declared:
            return []  # TorchScript declares none: the reference run names them
        if fmt.outputs == "sanitized":  # outputs are positional in Keras: their names can be made servable
            return list(sanitize([d.name for d in declared]).values())
        if fmt.outputs == "declared":
            bad = [d.name for d in declared if not re.fullmatch(NAME_PATTERN, d.name)]
            if bad:
                raise RefusedError(f"output {bad[0]!r} is not a name duoserve can serve (letters, digits, _)")
            return [d.name for d in declared]
        return ["output"] if len(declared) == 1 else [f"output_{i}" for i in range(len(declared))]


def stage(
    adder: Adder,
    entry: ModelEntry,
    fmt: SourceFormat,
    source: Path,
    produced: Produced,
    parity: dict[str, ParityRecord],
    sample: dict[str, np.ndarray] | None,
) -> ModelEntry:
    """Put ``entry``'s files in place in the staging root, record them, and pack its archives."""
    stage = adder.stage
    name = entry.name
    src_dir = adder.artifact("source")
    src_dir.mkdir(parents=True, exist_ok=True)
    given: tuple[Path, ...] = adder.opts.pair or ((adder.opts.source,) if adder.opts.source else ())
    for path in given:
        kept = source if fmt.key == "onnx" else path  # an ONNX source is kept as one self-contained file
        (shutil.copytree if kept.is_dir() else shutil.copy2)(kept, src_dir / path.name)
    if sample is not None:
        adder.artifact("sample").parent.mkdir(parents=True, exist_ok=True)
        np.savez(adder.artifact("sample"), **sample)  # type: ignore[arg-type]
    for kind, made in produced.items():
        target = adder.artifact(kind)
        target.parent.mkdir(parents=True, exist_ok=True)
        if made is None:  # the source itself is this kind's artifact
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
        elif made != target:
            shutil.move(str(made), target)
    records: dict[str, ArtifactRecord] = {}
    source_sha = sha256_path(src_dir)
    for kind in ("source", "sample", *produced):
        path = adder.artifact(kind)
        if path.exists():
            records[kind] = ArtifactRecord(
                path=path.relative_to(stage).as_posix(),
                sha256=sha256_path(path),
                recipe=sha256_text(kind, source_sha, json_contract(entry)),
            )
    entry = entry.model_copy(
        update={
            "source": SourceInfo(
                format="pair" if adder.opts.pair else fmt.key,
                files=tuple(p.name for p in given),
                sha256=source_sha,
                reference=fmt.reference,
            ),
            "parity": parity,
            "artifacts": records,
            "missing": dict(adder.conv.missing),
            "latency": {k: v for k, v in adder.latency.items() if k == "source" or k in produced},
            "made_by": {k: v for k, v in adder.conv.made_by.items() if k in produced and produced[k] is not None},
        }
    )
    adder.say("  archives: TorchServe .mar" + (" and _ort.mar" if "torch_ort" in entry.backends else ""))
    Manifest(models={name: entry}).write(stage / "manifest.json")
    converters.archives(adder.conv, stage, entry)
    shas = {k: r.sha256 for k, r in entry.artifacts.items()}
    for stage_def in stages_of(entry):
        entry.artifacts[stage_def.kind] = record(stage, entry, stage_def, shas)
    return entry


def json_contract(entry: ModelEntry) -> str:
    import json

    return json.dumps(entry.contract(), sort_keys=True)


def add(opts: AddOptions, root: Path, say: Say) -> ModelEntry:
    """Run ``models add``; RefusedError (one line) leaves the artifacts and the manifest as they were."""
    if not re.fullmatch(MODEL_NAME_PATTERN, opts.name):
        raise RefusedError(
            f"{opts.name!r} is not a model name: lower-case letters, digits and _, starting with a letter, at most 40"
        )
    if opts.name in BUILTINS:
        raise RefusedError(f"{opts.name!r} is a built-in model's name; choose another")
    if opts.max_batch is not None and opts.max_batch < 1:
        raise RefusedError("--max-batch must be at least 1")
    if (opts.source is None) == (opts.pair is None):
        raise RefusedError("give one model file, or --pair TORCH_FILE TF_MODEL")
    with locked(root):
        from contract.manifest import read_manifest

        manifest = read_manifest(root, missing_ok=True)
        if opts.name in manifest.models and not opts.replace:
            raise RefusedError(f"model {opts.name!r} exists; add --replace to replace it")
        adder = Adder(opts, root, say)
        try:
            entry = adder.add()
            commit(root, manifest, opts.name, entry, adder.stage)
        finally:
            shutil.rmtree(adder.stage, ignore_errors=True)
    return entry
