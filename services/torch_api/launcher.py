"""Run TorchServe natively in the foreground with duoserve's config and model store.

Starts the Java frontend directly (the ``torchserve`` script keeps one pid file per
host in /tmp, which stops a second instance, e.g. tests beside ``make up``), renders
the effective ``config.properties`` into the run directory, waits until every model
has a ready worker (asking the management API with the management key from
``key_file.json``), then stays in the foreground until SIGTERM/SIGINT. A model that
fails to load ends the launch with a non-zero exit and the log tail.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

from contract.artifacts import ArtifactError
from contract.keys import KEY_FILE, KeyFileError, read_keys
from contract.manifest import read_manifest
from services.process import Process, StartError, wait_until
from services.torch_api.keyrefresh import refresh
from services.torch_api.settings import LOG4J2, TorchApiSettings

_ARCHIVES = (("mar", ""), ("mar_ort", "_ort"))
#: Printed once every model has ready workers; the stack and the tests wait for it.
READY_LINE = "torch_api: ready"


def _ts_home() -> Path:
    import ts

    return Path(ts.__file__).resolve().parent.parent


def render_config(settings: TorchApiSettings, model_store: Path, models: list[str]) -> str:
    """The template with this instance's addresses, limits and model list filled in."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    overrides = {
        "inference_address": f"http://{host}:{settings.inference_port}",
        "management_address": f"http://{host}:{settings.management_port}",
        "metrics_address": f"http://{host}:{settings.metrics_port}",
        "grpc_inference_address": settings.host,
        "grpc_management_address": settings.host,
        "grpc_inference_port": str(settings.grpc_inference_port),
        "grpc_management_port": str(settings.grpc_management_port),
        "initial_worker_port": str(settings.worker_port),
        "token_expiration_min": str(settings.token_expiration_min),
        "max_request_size": str(settings.max_request_bytes),
        "job_queue_size": str(settings.job_queue_size),
        # only archives in this model store, by exact name
        "allowed_urls": "^file://" + re.escape(str(model_store)).replace("\\", "\\\\") + "/[A-Za-z0-9_]+\\\\.mar$",
        "load_models": ",".join(f"{m}.mar" for m in models),
        # the environment must not re-point the native instance
        "enable_envvars_config": "false",
    }
    lines: list[str] = []
    seen: set[str] = set()
    for line in settings.config_template.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if not line.lstrip().startswith("#") and key in overrides:
            lines.append(f"{key}={overrides[key]}")
            seen.add(key)
        else:
            lines.append(line)
    lines += [f"{key}={value}" for key, value in overrides.items() if key not in seen]
    return "\n".join(lines) + "\n"


def java_command(settings: TorchApiSettings, config: Path, model_store: Path) -> list[str]:
    """The frontend's command line, as ``torchserve --foreground`` builds it."""
    home = _ts_home()
    logging = [f"-Dlog4j.configurationFile={LOG4J2.as_uri()}"] if settings.logging == "production" else []
    return [
        settings.java,
        f"-Dmodel_server_home={home}",
        *logging,
        "-cp",
        f".:{home / 'ts' / 'frontend' / '*'}",
        "org.pytorch.serve.ModelServer",
        "--python",
        sys.executable,
        "-f",
        str(config),
        "-s",
        str(model_store),
        "-ncs",
    ]


def _get_json(url: str, key: str | None = None, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def log_env(settings: TorchApiSettings) -> dict[str, str]:
    """Where TorchServe logs and, with the production logging, at which levels (log4j2.xml reads these)."""
    env = {"LOG_LOCATION": str(settings.log_dir), "METRICS_LOCATION": str(settings.log_dir)}
    if settings.logging == "production":
        env["DUOSERVE_TS_LOG_LEVEL"] = settings.log_level
        env["DUOSERVE_TS_MODEL_LOG_LEVEL"] = settings.model_log_level
        env["DUOSERVE_TS_ACCESS_LOG"] = "info" if settings.access_log else "off"
    return env


def model_status(settings: TorchApiSettings, name: str) -> tuple[bool, str]:
    """(ready, detail) of one model from the management API."""
    key = read_keys(settings.run_dir / KEY_FILE).get("management")
    base = f"http://{settings.host}:{settings.management_port}"
    try:
        info = _get_json(f"{base}/models/{name}", key)
    except urllib.error.HTTPError as exc:
        return False, f"management API answered {exc.code}"
    workers = info[0].get("workers", []) if isinstance(info, list) and info else []
    states = [w.get("status") for w in workers]
    return bool(states) and all(s == "READY" for s in states), f"workers {states}"


def log_tail(log_dir: Path, lines: int = 40) -> str:
    """The end of TorchServe's own log and the workers' log."""
    out = []
    for name in ("ts_log.log", "model_log.log"):
        path = log_dir / name
        if path.exists():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path} ---\n" + "\n".join(text))
    return "\n".join(out) or f"(no logs in {log_dir})"


def prepare(settings: TorchApiSettings) -> tuple[Path, Path, list[str]]:
    """Check the archives against the manifest and write the effective config; returns (config, store, models)."""
    manifest = read_manifest(settings.artifacts)
    store = (settings.artifacts / "model-store").resolve()
    available = {
        f"{model}{suffix}": (model, kind)
        for model, entry in manifest.models.items()
        for kind, suffix in _ARCHIVES
        if kind != "mar_ort" or "torch_ort" in entry.backends
    }
    models = settings.model_names(list(available))
    for name in models:
        manifest.verify(settings.artifacts, *available[name])
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.run_dir.chmod(0o700)  # the key file is a secret
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    config = settings.run_dir / "config.properties"
    config.write_text(render_config(settings, store, models))
    (settings.run_dir / KEY_FILE).unlink(missing_ok=True)
    return config, store, models


def wait_ready(settings: TorchApiSettings, proc: Process, models: list[str]) -> None:
    """Block until every model has READY workers; :class:`StartError` with the log tail otherwise."""
    pending = list(models)
    detail = ["not started"]

    def ready() -> bool:
        while pending:
            ok, detail[0] = model_status(settings, pending[0])
            if not ok:
                return False
            pending.pop(0)
        return True

    def failed() -> str | None:
        if proc.exited():
            return f"(TorchServe) {proc.exited()} during start-up"
        if "Failed to load model" in _tail_text(settings.log_dir / "ts_log.log") or "FAILED" in detail[0]:
            return f"could not load model {pending[0]} ({detail[0]})"
        return None

    try:
        wait_until(
            ready,
            what="torch_api",
            timeout_s=settings.ready_timeout_s,
            failed=failed,
            tail=lambda: log_tail(settings.log_dir),
            interval_s=0.5,
        )
    except StartError as exc:
        raise StartError(f"{exc} (waiting for {pending}: {detail[0]})") from None


def _logging_line(settings: TorchApiSettings) -> str:
    if settings.logging != "production":
        return "TorchServe's default logging (DEBUG, access log on, console copy unrotated)"
    access = "access log on" if settings.access_log else "no access log"
    return f"{settings.log_level.upper()}, {access}, files roll at 10 MB (stdout.log at {settings.log_max_bytes} B)"


def _tail_text(path: Path, size: int = 20000) -> str:
    if not path.exists():
        return ""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - size))
        return f.read().decode(errors="replace")


def serve(settings: TorchApiSettings) -> int:
    """Start TorchServe, wait for readiness, stay in the foreground; returns the exit code."""
    try:
        config, store, models = prepare(settings)
    except (ArtifactError, ValueError) as exc:
        print(f"torch_api: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ, **log_env(settings))
    production = settings.logging == "production"
    # Java stays in the launcher's process group: stopping the group stops both.
    proc = Process(
        "TorchServe",
        java_command(settings, config, store),
        settings.log_dir / "stdout.log",
        env=env,
        cwd=settings.run_dir,
        own_group=False,
        append=True,
        # the console copy rolls over too (TorchServe's own logging: as it shipped, unbounded)
        rotate=(settings.log_max_bytes, settings.log_backups) if production else None,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        if proc.returncode is None:
            proc.signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"torch_api: TorchServe starting (inference http://{settings.host}:{settings.inference_port}, "
        f"models {', '.join(models)}; logs in {settings.log_dir}: {_logging_line(settings)})",
        flush=True,
    )
    try:
        wait_ready(settings, proc, models)
    except StartError as exc:
        print(f"torch_api: {exc}", file=sys.stderr, flush=True)
        proc.stop()
        return 1
    print(f"{READY_LINE}; inference key in {settings.run_dir / KEY_FILE}", flush=True)
    code = _foreground(settings, proc)
    proc.stop()
    return 0 if code in (0, -signal.SIGTERM, 143) else code


def _foreground(settings: TorchApiSettings, proc: Process) -> int:
    """Wait for TorchServe to exit, renewing the inference key at half its lifetime."""
    interval = settings.key_renew_s or settings.token_expiration_min * 60 / 2
    management = f"http://{settings.host}:{settings.management_port}"
    while True:
        try:
            return proc.popen.wait(timeout=interval)
        except subprocess.TimeoutExpired:
            try:
                refresh(management, settings.run_dir / KEY_FILE)
                print("torch_api: inference key renewed", flush=True)
            except (OSError, ValueError, KeyError, KeyFileError) as exc:
                print(f"torch_api: inference key renewal failed: {exc}", file=sys.stderr, flush=True)
