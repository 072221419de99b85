"""The converters, one function per (from, to): each runs the field's converter in its own process.

torch.onnx, onnx2torch, tf2onnx, Keras 3's torch backend and Keras' SavedModel export, and
onnx2tf for ONNX -> TF. Which of them a source format uses, in which order, is the format's
business (:mod:`.formats`). onnx2tf pins TensorFlow 2.19,
numpy 1.26 and onnx 1.19, which clash with the serving stack (TF 2.21, numpy 2.4), so it
runs from a venv of its own, ``.venv-onnx2tf``, created on first use from
``onnx2tf.requirements.txt`` (``make converters`` creates it ahead).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract.manifest import ModelEntry

from .conversion import Conversion, Produced
from .spec import RefusedError, sanitize
from .steps import REPO

#: What works when no converter makes the torch side from ONNX (onnx2torch is unmaintained since 2024-08).
TORCH_REMEDY = (
    "bring the model as a torch.export .pt2 instead (torch.export.export with dynamic_shapes, then torch.export.save): "
    "duoserve serves it as it is and makes ONNX and TF from it (docs/models.md)"
)
ONNX2TF_VENV = Path(os.environ.get("DUOSERVE_ONNX2TF_VENV") or REPO / ".venv-onnx2tf")
ONNX2TF_REQUIREMENTS = Path(__file__).resolve().parent / "onnx2tf.requirements.txt"


def onnx2tf_command() -> Path:
    """onnx2tf's command in its own venv, creating the venv first if it is missing or stale."""
    given = bool(os.environ.get("DUOSERVE_ONNX2TF_VENV"))  # an explicitly given venv is used as it is
    return converter_venv(ONNX2TF_VENV, ONNX2TF_REQUIREMENTS, as_given=given) / "bin" / "onnx2tf"


def converter_venv(venv: Path, requirements: Path, *, as_given: bool = False, torch_from_main: bool = False) -> Path:
    """A converter's own venv, created (or re-created when ``requirements`` changed) from ``requirements``.

    ``torch_from_main``: the main venv's site-packages are appended to the venv's path (a
    ``.pth`` file), so the venv's own pins (TensorFlow, numpy) win and torch, which only the
    main venv has (it installs from local disk), is found there.
    """
    stamp = venv / ".installed"
    wanted = requirements.read_text()
    if (venv / "bin" / "python").exists() and (as_given or (stamp.exists() and stamp.read_text() == wanted)):
        return venv
    print(f"creating the converter venv {venv} from {requirements.name} (once; a few minutes)", flush=True)
    python = venv / "bin" / "python"
    steps = [
        [_base_python(), "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RefusedError(f"cannot create the converter venv {venv.name} ({' '.join(cmd[:4])}…): {tail[0]}")
    if torch_from_main:
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        main_site = sysconfig.get_paths()["purelib"]
        (Path(site) / "zz_duoserve_main_venv.pth").write_text(main_site + "\n")
    stamp.write_text(wanted)
    return venv


def _base_python() -> str:
    """The interpreter the project venv was made from (a venv cannot make a venv of itself without it)."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(base) if base.exists() else "python3.11"


def normalize_onnx(conv: Conversion, source: Path) -> Path:
    """The ONNX source as one self-contained file (external data folded in), inputs and outputs named as the
    contract can take them (edges renamed, graph untouched)."""
    found = conv.steps.run("onnx", [{"op": "check", "path": str(source)}, {"op": "inspect", "path": str(source)}])[-1]
    inputs = sanitize([t["name"] for t in found["inputs"]])
    outputs = sanitize([t["name"] for t in found["outputs"]])
    target = conv.work / "source.onnx"
    task = {"op": "normalize", "path": str(source), "inputs": inputs, "outputs": outputs, "out": str(target)}
    conv.steps.run("onnx", [task])
    renamed = ", ".join(f"{k} -> {v}" for k, v in {**inputs, **outputs}.items() if k != v)
    if renamed:
        conv.say(f"  names: {renamed} (JSON keys and TF signature keys take letters, digits and _)")
    return target


Maker = tuple[str, Callable[[], Produced]]


def first_faithful(conv: Conversion, what: str, *makers: Maker, optional: bool = False) -> Produced:
    """The artifact from the first maker whose result passes the parity gate, in the order given.

    Each maker is (converter name, function making one artifact). A converter that fails, or
    whose artifact the gate refuses, hands over to the next. ``optional`` (only ONNX, whose
    archive is the one a model can go without): when none succeeds the model is still
    registered for torch and tf, and the manifest says why (``missing``); otherwise the add is
    refused with every converter's reason.
    """
    reasons = []
    for name, make in makers:
        try:
            made = make()
            for kind, path in made.items():
                assert path is not None
                conv.check(kind, path)
            return made
        except RefusedError as exc:
            reasons.append(str(exc) if len(makers) == 1 else f"{name}: {exc}")
            if len(makers) > 1:
                conv.say(f"  {what}: {name} refused ({str(exc)[:160]})")
    if optional:
        conv.missing["onnx"] = "; ".join(reasons)
        conv.say(f"  {what}: none made; the model is served by torch, triton and tf only (no torch_ort, no triton_ort)")
        return {}
    raise RefusedError("; ".join(reasons))


def torch_from_onnx(conv: Conversion, entry: ModelEntry, onnx: Path) -> Produced:
    """onnx2torch, then TorchScript by tracing (torch.export where tracing does not reproduce it)."""
    conv.say("  torch: onnx2torch")
    conv.made_by.update(torchscript="onnx2torch + torch.jit.trace", torch_export="onnx2torch + torch.export")
    try:
        (found,) = conv.steps.run(
            "torch",
            [{"op": "from_onnx", "onnx": str(onnx), "contract": conv.contract(entry), "example": str(conv.cases),
              "out_dir": str(conv.work / "torch")}],
        )  # fmt: skip
    except RefusedError as exc:
        raise RefusedError(f"{exc}; {TORCH_REMEDY}") from None
    return _torch_kept(conv, found)


def onnx_from_torch(conv: Conversion, entry: ModelEntry, fmt: str, path: Path) -> Path:
    """torch.onnx: the TorchScript exporter for a ``.pt``, the dynamo exporter for a ``.pt2``."""
    conv.say("  ONNX: torch.onnx")
    conv.made_by["onnx"] = "torch.onnx"
    onnx = conv.work / f"from_{fmt}.onnx"
    conv.steps.run(
        "torch",
        [{"op": "to_onnx", "format": fmt, "path": str(path), "contract": conv.contract(entry),
          "example": str(conv.cases), "out": str(onnx)}],
    )  # fmt: skip
    return onnx


def onnx_from_savedmodel(conv: Conversion, entry: ModelEntry, saved: Path) -> Path:
    conv.say("  ONNX: tf2onnx")
    conv.made_by["onnx"] = "tf2onnx"
    onnx = conv.work / "from_tf.onnx"
    conv.steps.run("tf", [{"op": "to_onnx", "path": str(saved), "contract": conv.contract(entry), "out": str(onnx)}])
    return onnx


def savedmodel_from_keras(conv: Conversion, entry: ModelEntry, keras_file: Path) -> Path:
    conv.say("  TF: Keras export")
    conv.made_by["tf"] = "Keras' SavedModel export"
    saved = conv.work / "keras_savedmodel"
    conv.steps.run(
        "tf", [{"op": "to_savedmodel", "keras": str(keras_file), "contract": conv.contract(entry), "out": str(saved)}]
    )
    return saved


def torch_from_keras(conv: Conversion, entry: ModelEntry, keras_file: Path, *, program: bool = False) -> Produced:
    """Keras 3 on its torch backend: the loaded model is a ``torch.nn.Module``, traced or exported.

    ``program``: a torch.export program only (the dynamo ONNX exporter's input), not the served artifact.
    """
    if not program:
        conv.say("  torch: Keras 3 on its torch backend")
        conv.made_by.update(torchscript="Keras 3 (torch backend) + torch.jit.trace",
                            torch_export="Keras 3 (torch backend) + torch.export")  # fmt: skip
    (found,) = conv.steps.run(
        "keras_torch",
        [{"op": "from_keras", "keras": str(keras_file), "contract": conv.contract(entry), "example": str(conv.cases),
          "out_dir": str(conv.work / ("keras_program" if program else "torch")), "export": program}],
        env={"KERAS_BACKEND": "torch"},
    )  # fmt: skip
    return _torch_kept(conv, found)


def _torch_kept(conv: Conversion, found: dict[str, Any]) -> Produced:
    """The artifact a torch step saved; a trace it froze because that ran faster is named so, with both times."""
    if "frozen_ms" in found:
        kept = "the frozen trace" if found["frozen"] else "the trace"
        conv.say(f"  torch: kept {kept} (in process at the largest case: frozen {found['frozen_ms']:.1f} ms, "
                 f"traced {found['trace_ms']:.1f} ms)")  # fmt: skip
    if found.get("frozen"):
        conv.made_by["torchscript"] += " + torch.jit.freeze"
    return {found["kind"]: Path(found["path"])}


def onnx_from_keras_program(conv: Conversion, entry: ModelEntry, keras_file: Path) -> Path:
    """The dynamo ONNX exporter on a torch.export program of the Keras-on-torch module (where the
    TorchScript exporter cannot export the trace's shape arithmetic)."""
    ((_, program),) = torch_from_keras(conv, entry, keras_file, program=True).items()
    assert program is not None
    onnx = onnx_from_torch(conv, entry, "torch_export", program)
    conv.made_by["onnx"] = "Keras 3 (torch backend) + torch.export + torch.onnx (dynamo)"
    return onnx


def tf_from_pair(conv: Conversion, entry: ModelEntry, fmt: str, path: Path) -> Path:
    """The ``--pair``'s TF side: a ``.keras`` file exported, a SavedModel re-signed as the contract names it."""
    if fmt == "keras":
        saved = savedmodel_from_keras(conv, entry, path)
        conv.made_by["tf"] = "the --pair .keras file, exported"
        return saved
    conv.made_by["tf"] = "the --pair SavedModel"
    return _resign(conv, entry, path, conv.work / "pair_savedmodel")


def _resign(conv: Conversion, entry: ModelEntry, path: Path, out: Path) -> Path:
    """One signature, named as the contract says, whatever the SavedModel's was."""
    conv.steps.run("tf", [{"op": "resign", "path": str(path), "contract": conv.contract(entry), "out": str(out)}])
    return out


def tf_from_onnx(conv: Conversion, entry: ModelEntry, onnx: Path) -> Path:
    """ONNX -> SavedModel with onnx2tf, input layouts kept (NCHW stays NCHW), signature named as the contract."""
    command = onnx2tf_command()
    conv.say("  TF: onnx2tf")
    conv.made_by["tf"] = "onnx2tf"
    out = conv.work / "onnx2tf"
    given = conv.work / "onnx2tf-input.onnx"
    shutil.copy(onnx, given)  # onnx2tf simplifies its input file in place
    args = [str(command), "-i", str(given), "-o", str(out), "-osd", "-kat", *entry.input_names, "-n"]
    # onnx2tf runs `onnxsim` as a command (and skips simplifying, silently, when it is not on PATH)
    path = f"{command.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    try:
        conv.steps.command("onnx2tf", args, env={"PATH": path})
    except RefusedError as exc:
        raise RefusedError(
            f"{exc}; bring the TF side yourself: duoserve models add NAME --pair TORCH_FILE TF_MODEL (docs/models.md)"
        ) from None
    return _resign(conv, entry, out, conv.work / "tf_savedmodel")


def tf_from_torch_export(conv: Conversion, entry: ModelEntry, program: Path) -> Path:
    """torch.export program -> SavedModel through duoserve's lowering of the core ATen opset.

    The torch side writes the decomposed graph (``to_graph``), the TF side builds a
    ``tf.function`` from it op by op with the program's symbolic shapes, so batch and sequence
    axes stay dynamic (:mod:`services.tf_api.aten`); an op the table lacks is refused by name.
    """
    conv.say("  TF: the ATen lowering")
    conv.made_by["tf"] = "torch.export + duoserve's ATen lowering"
    graph = conv.work / "aten_graph"
    contract = conv.contract(entry)
    conv.steps.run("torch", [{"op": "to_graph", "path": str(program), "contract": contract, "out": str(graph)}])
    saved = conv.work / "aten_savedmodel"
    conv.steps.run("tf", [{"op": "from_graph", "graph": str(graph), "contract": contract, "out": str(saved)}])
    return saved


def program_from_onnx(conv: Conversion, entry: ModelEntry, onnx: Path) -> Path:
    """ONNX -> onnx2torch -> a torch.export program (for the ATen lowering, when the source is not one)."""
    conv.say("  torch.export program: onnx2torch")
    (found,) = conv.steps.run(
        "torch",
        [{"op": "from_onnx", "onnx": str(onnx), "contract": conv.contract(entry), "example": str(conv.cases),
          "out_dir": str(conv.work / "program"), "export": True}],
    )  # fmt: skip
    return Path(found["path"])


def archives(conv: Conversion, stage: Path, entry: ModelEntry) -> None:
    """TorchServe's archives of the staged model (the build's own export step, run on the staging root)."""
    jobs = [f"{entry.name}:mar", *([f"{entry.name}:mar_ort"] if "torch_ort" in entry.backends else [])]
    conv.steps.command(
        "TorchServe archives",
        [sys.executable, "-m", "services.torch_api.export", "--root", str(stage),
         *(arg for job in jobs for arg in ("--job", job))],
    )  # fmt: skip
