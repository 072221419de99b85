"""Which converter makes which artifact from which source, and the onnx2tf venv it needs.

Field converters only, never hand-written graph code: torch.onnx, onnx2torch, tf2onnx,
Keras 3's torch backend, and onnx2tf for ONNX -> TF. onnx2tf pins TensorFlow 2.19,
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
from pathlib import Path
from typing import TYPE_CHECKING

from contract.manifest import ModelEntry

from .spec import RefusedError, sanitize
from .steps import REPO

if TYPE_CHECKING:
    from .add import Adder

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


def normalize_onnx(adder: Adder, source: Path) -> Path:
    """The ONNX source as one self-contained file (external data folded in), inputs and outputs named as the
    contract can take them (edges renamed, graph untouched)."""
    found = adder.steps.run("onnx", [{"op": "check", "path": str(source)}, {"op": "inspect", "path": str(source)}])[-1]
    inputs = sanitize([t["name"] for t in found["inputs"]])
    outputs = sanitize([t["name"] for t in found["outputs"]])
    target = adder.work / "source.onnx"
    task = {"op": "normalize", "path": str(source), "inputs": inputs, "outputs": outputs, "out": str(target)}
    adder.steps.run("onnx", [task])
    renamed = ", ".join(f"{k} -> {v}" for k, v in {**inputs, **outputs}.items() if k != v)
    if renamed:
        adder.say(f"  names: {renamed} (JSON keys and TF signature keys take letters, digits and _)")
    return target


def produce(
    adder: Adder, entry: ModelEntry, fmt: str, source: Path, pair_tf: tuple[str, Path] | None
) -> dict[str, Path | None]:
    """Every artifact ``entry`` needs, made in the staging area: kind -> path (None: the source itself)."""
    contract = entry.model_dump_json()
    example = str(adder.cases)
    made: dict[str, Path | None] = {}
    if fmt == "onnx":
        made["onnx"] = None
        made.update(_torch_from_onnx(adder, contract, source, example))
        made["tf"] = _tf_from_onnx(adder, entry, source)
    elif fmt in ("torchscript", "torch_export"):
        made[fmt] = None
        onnx = adder.work / "from_torch.onnx"
        adder.say("  ONNX: torch.onnx")
        adder.made_by["onnx"] = "torch.onnx"
        adder.steps.run(
            "torch",
            [{"op": "to_onnx", "format": fmt, "path": str(source), "contract": contract, "example": example,
              "out": str(onnx)}],
        )  # fmt: skip
        made["onnx"] = onnx
        made["tf"] = _tf_from_pair(adder, entry, pair_tf) if pair_tf else _tf_from_onnx(adder, entry, onnx)
    elif fmt == "savedmodel":
        made["tf"] = None
        onnx = _onnx_from_savedmodel(adder, contract, source)
        made["onnx"] = onnx
        made.update(_torch_from_onnx(adder, contract, onnx, example))
    elif fmt == "keras":
        saved = _keras_to_savedmodel(adder, contract, source)
        made["tf"] = saved
        made["onnx"] = _onnx_from_savedmodel(adder, contract, saved)
        adder.say("  torch: Keras 3 on its torch backend")
        adder.made_by.update(torchscript="Keras 3 (torch backend) + torch.jit.trace",
                             torch_export="Keras 3 (torch backend) + torch.export")  # fmt: skip
        (found,) = adder.steps.run(
            "keras_torch",
            [{"op": "from_keras", "keras": str(source), "contract": contract, "example": example,
              "out_dir": str(adder.work / "torch")}],
            env={"KERAS_BACKEND": "torch"},
        )  # fmt: skip
        made[found["kind"]] = Path(found["path"])
    else:
        raise RefusedError(f"no conversion path from {fmt}")
    return made


def _torch_from_onnx(adder: Adder, contract: str, onnx: Path, example: str) -> dict[str, Path | None]:
    adder.say("  torch: onnx2torch")
    adder.made_by.update(torchscript="onnx2torch + torch.jit.trace", torch_export="onnx2torch + torch.export")
    (found,) = adder.steps.run(
        "torch",
        [{"op": "from_onnx", "onnx": str(onnx), "contract": contract, "example": example,
          "out_dir": str(adder.work / "torch")}],
    )  # fmt: skip
    return {found["kind"]: Path(found["path"])}


def _onnx_from_savedmodel(adder: Adder, contract: str, saved: Path) -> Path:
    adder.say("  ONNX: tf2onnx")
    adder.made_by["onnx"] = "tf2onnx"
    onnx = adder.work / "from_tf.onnx"
    adder.steps.run("tf", [{"op": "to_onnx", "path": str(saved), "contract": contract, "out": str(onnx)}])
    return onnx


def _keras_to_savedmodel(adder: Adder, contract: str, keras_file: Path) -> Path:
    adder.say("  TF: Keras export")
    adder.made_by["tf"] = "Keras' SavedModel export"
    saved = adder.work / "keras_savedmodel"
    adder.steps.run("tf", [{"op": "to_savedmodel", "keras": str(keras_file), "contract": contract, "out": str(saved)}])
    return saved


def _tf_from_pair(adder: Adder, entry: ModelEntry, pair_tf: tuple[str, Path]) -> Path:
    fmt, path = pair_tf
    if fmt == "keras":
        saved = _keras_to_savedmodel(adder, entry.model_dump_json(), path)
        adder.made_by["tf"] = "the --pair .keras file, exported"
        return saved
    adder.made_by["tf"] = "the --pair SavedModel"
    saved = adder.work / "pair_savedmodel"
    adder.steps.run(
        "tf", [{"op": "resign", "path": str(path), "contract": entry.model_dump_json(), "out": str(saved)}]
    )  # one signature, named as the contract says, whatever the pair's was
    return saved


def _tf_from_onnx(adder: Adder, entry: ModelEntry, onnx: Path) -> Path:
    """ONNX -> SavedModel with onnx2tf, input layouts kept (NCHW stays NCHW), signature named as the contract."""
    command = onnx2tf_command()
    adder.say("  TF: onnx2tf")
    adder.made_by["tf"] = "onnx2tf"
    out = adder.work / "onnx2tf"
    given = adder.work / "onnx2tf-input.onnx"
    shutil.copy(onnx, given)  # onnx2tf simplifies its input file in place
    args = [str(command), "-i", str(given), "-o", str(out), "-osd", "-kat", *entry.input_names, "-n"]
    # onnx2tf runs `onnxsim` as a command (and skips simplifying, silently, when it is not on PATH)
    path = f"{command.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    try:
        adder.steps.command("onnx2tf", args, env={"PATH": path})
    except RefusedError as exc:
        raise RefusedError(
            f"{exc}; bring the TF side yourself: duoserve models add NAME --pair TORCH_FILE TF_MODEL (docs/models.md)"
        ) from None
    saved = adder.work / "tf_savedmodel"
    adder.steps.run(
        "tf",
        [{"op": "resign", "path": str(out), "contract": entry.model_dump_json(), "out": str(saved)}],
    )
    return saved


def archives(adder: Adder, entry: ModelEntry) -> None:
    """TorchServe's two archives of the staged model (the build's own export step, run on the staging root)."""
    python = sys.executable
    adder.steps.command(
        "TorchServe archives",
        [python, "-m", "services.torch_api.export", "--root", str(adder.stage), "--job", f"{entry.name}:mar",
         "--job", f"{entry.name}:mar_ort"],
    )  # fmt: skip
