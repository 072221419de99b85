"""Run NVIDIA Triton Inference Server natively in the foreground, from PyPI's ``nvidia-pytriton`` wheel.

The wheel carries the real ``tritonserver`` binary (Triton 2.51), its python backend and
one backend stub per Python version. Before Triton starts, the launcher writes everything
it reads into the run directory, never into the venv or the artifacts:

* the model repository, generated from the manifest (:mod:`services.triton_api.repository`);
* a backend directory whose ``python/`` holds links to the wheel's ``libtriton_python.so``
  and ``triton_python_backend_utils.py`` beside the stub of the Python running this code
  (the backend starts the stub found next to the library).

Triton then runs with model control off (``--model-control-mode none``: it loads the
repository once and nothing can load or unload a model), every port on ``host`` (loopback;
it binds ``0.0.0.0`` unless told), the shared-memory, repository, trace and logging APIs closed, and
``--exit-on-error``: a model it cannot load ends the start-up, and the launcher prints
Triton's message with the model's name. Ready once ``/v2/health/ready`` answers 200 (strict
readiness: every model ready); then it stays in the foreground until SIGTERM/SIGINT.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shutil
import signal
import sys
import sysconfig
from pathlib import Path
from types import FrameType

from contract.artifacts import ArtifactError
from contract.manifest import read_manifest
from contract.tuning import TunedConfig, TunedFileError
from services.logsink import BACKUPS, MAX_BYTES
from services.process import Process, StartError, http_probe
from services.triton_api import repository
from services.triton_api.settings import TritonApiSettings

REPO = Path(__file__).resolve().parents[2]

#: Printed once every model is ready; the stack and the tests wait for it.
READY_LINE = "triton_api: ready"
#: Triton's log line for a model it could not load (model_lifecycle.cc) or whose config it refused
#: (model_repository_manager.cc)
_FAILED = re.compile(
    r"(?:failed to load '(?P<name>[^']+)' version \d+|Poll failed for model directory '(?P<dir>[^']+)'): (?P<why>.*)"
)
STUB = "triton_python_backend_stub"


def tritonserver_home() -> Path:
    """``pytriton/tritonserver`` of the installed ``nvidia-pytriton`` wheel (its code is never imported)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the tritonserver binary comes from PyPI's nvidia-pytriton 0.7.0, which is not installed: "
            "`make setup`, or set TRITON_API_BINARY"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "tritonserver"


_UTILS_WRAPPER = """\
# Written by services/triton_api/launcher.py before Triton started; the stub imports it first.
# The stub's interpreter is isolated (PyConfig_InitIsolatedConfig): PYTHONPATH and the venv never
# reach it, so the venv's site-packages (.pth files included) and the repository root go on
# sys.path here, before the backend's own utils (which import numpy) run.
import site
import sys

site.addsitedir({site_packages!r})
if {repo!r} not in sys.path:
    sys.path.insert(1, {repo!r})
with open({utils!r}) as _file:
    exec(compile(_file.read(), {utils!r}, "exec"))
"""


def backend_directory(home: Path, out: Path) -> Path:
    """``out`` with ``python/``: the wheel's python backend beside the stub for this Python; returns ``out``.

    ``triton_python_backend_utils.py`` there is a wrapper (:data:`_UTILS_WRAPPER`) that puts this
    venv on the stub's ``sys.path`` and then runs the wheel's own file.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = home / "python_backend_stubs" / version / STUB
    if not stub.exists():
        raise FileNotFoundError(f"{stub}: the nvidia-pytriton wheel has no python backend stub for Python {version}")
    python = out / "python"
    shutil.rmtree(out, ignore_errors=True)
    python.mkdir(parents=True)
    (python / "libtriton_python.so").symlink_to(home / "backends" / "python" / "libtriton_python.so")
    (python / STUB).symlink_to(stub)
    utils = home / "backends" / "python" / "triton_python_backend_utils.py"
    wrapper = _UTILS_WRAPPER.format(site_packages=sysconfig.get_paths()["purelib"], repo=str(REPO), utils=str(utils))
    (python / "triton_python_backend_utils.py").write_text(wrapper)
    return out


#: APIs nothing in duoserve calls, each closed behind a header whose value is drawn anew at every start:
#: registering shared memory would let any local process point Triton at memory regions of its choice
RESTRICTED = "shared-memory,model-repository,trace,logging"


def command(settings: TritonApiSettings, binary: Path, models: Path, backends: Path) -> list[str]:
    """Triton's command line: loopback only, model control off, strict readiness, exit on a model's error,
    the APIs duoserve does not use closed."""
    host = settings.host
    closed = f"{RESTRICTED}:duoserve-admin={secrets.token_hex(16)}"
    return [
        str(binary),
        f"--model-repository={models}",
        f"--backend-directory={backends}",
        "--model-control-mode=none",
        "--strict-model-config=true",
        "--strict-readiness=true",
        "--exit-on-error=true",
        f"--http-address={host}",
        f"--http-port={settings.http_port}",
        f"--grpc-address={host}",
        f"--grpc-port={settings.grpc_port}",
        "--allow-metrics=true",
        "--allow-gpu-metrics=false",
        f"--metrics-address={host}",
        f"--metrics-port={settings.metrics_port}",
        "--allow-sagemaker=false",
        "--allow-vertex-ai=false",
        f"--http-restricted-api={closed}",
        f"--grpc-restricted-protocol={closed}",
        f"--log-verbose={settings.log_verbose}",
    ]


def prepare(settings: TritonApiSettings) -> tuple[list[str], list[str]]:
    """Write the repository and the backend directory; returns (the command, the Triton model names)."""
    manifest = read_manifest(settings.artifacts)
    names = settings.model_names(list(repository.triton_models(manifest)))
    tuned = TunedConfig.read(settings.tuned) if settings.tuned is not None else None
    windows = repository.windows(names, settings.instances, tuned)
    home = tritonserver_home() if settings.binary is None else settings.binary.resolve().parents[1]
    binary = settings.binary or home / "bin" / "tritonserver"
    if not binary.exists():
        raise FileNotFoundError(f"{binary}: no tritonserver binary there (TRITON_API_BINARY)")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    models = repository.write_repository(manifest, settings.artifacts, settings.run_dir / "repository", names, windows)
    backends = backend_directory(home, settings.run_dir / "backends")
    return command(settings, binary, models, backends), names


def load_failures(log: str) -> list[str]:
    """``model digits: <Triton's message>`` for every model Triton said it could not load."""
    # the message's first line: Triton writes a Python traceback's newlines as "\\n"
    found = {m["name"] or m["dir"]: m["why"].split("\\n")[0].strip().rstrip('"') for m in _FAILED.finditer(log)}
    return [f"model {name}: {why}" for name, why in found.items()]


def environment() -> dict[str, str]:
    """Triton's environment: the stub loads the libpython of the Python running this code (the venv's), where
    that build has a shared one (pyenv's, Debian's ``libpython3.11``)."""
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME")
    if libdir and soname and (Path(libdir) / soname).exists():
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libdir, env.get("LD_LIBRARY_PATH")]))
    return env


def serve(settings: TritonApiSettings) -> int:
    """Start Triton, wait for readiness, stay in the foreground; returns the exit code."""
    try:
        cmd, names = prepare(settings)
    except (ArtifactError, TunedFileError, ValueError, FileNotFoundError) as exc:
        print(f"triton_api: {exc}", file=sys.stderr)
        return 2
    proc = Process(
        "tritonserver",
        cmd,
        settings.log_dir / "tritonserver.log",
        env=environment(),
        cwd=settings.run_dir,
        own_group=False,
        rotate=(MAX_BYTES, BACKUPS),
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        if proc.returncode is None:
            proc.signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    url = f"http://{settings.host}:{settings.http_port}"
    print(f"triton_api: Triton starting (inference {url}, models {', '.join(names)}; logs in {settings.log_dir})")
    try:
        proc.wait_ready(http_probe(f"{url}/v2/health/ready"), timeout_s=settings.ready_timeout_s, interval_s=0.5)
    except StartError as exc:
        failures = load_failures(proc.log_text())
        if failures:
            # Triton's own tail first, the one line naming the model last: `make up` shows a log's end
            print(proc.tail(), file=sys.stderr, flush=True)
        print(f"triton_api: {'; '.join(failures) if failures else exc}", file=sys.stderr, flush=True)
        proc.stop()
        return 1
    print(
        f"{READY_LINE}; {url}, gRPC {settings.host}:{settings.grpc_port}, metrics {settings.metrics_port}", flush=True
    )
    code = proc.popen.wait()
    proc.stop()
    return 0 if code in (0, -signal.SIGTERM, 143) else code
