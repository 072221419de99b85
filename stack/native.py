"""``make up`` / ``make down``: the native stack (TorchServe, Triton, the TF server, the gateway) in the background.

``python -m stack up`` checks that every port it needs is free (naming the port and the
variable that moves it), starts the three launchers, each in its own process group with
its output under ``$STACK_LOG_DIR/<service>/``, and returns once every one is ready:
TorchServe's launcher has seen every model's workers ready, Triton's launcher has seen
``/v2/health/ready`` (every model loaded; ``TRITON_API_MODELS=none`` leaves Triton out), the
TF server reports every model AVAILABLE, and the gateway's ``/health/ready`` lists every backend ready. It then
writes ``$STACK_RUN_DIR/stack.json`` (:class:`contract.stackinfo.StackInfo`) for the load
tests, benchmarks and tests. If anything fails or times out, it prints that service's log
tail, stops everything and exits 1. ``down`` stops all process groups (TERM, then KILL)
and is safe to run twice. Ports and options pass through the services' own variables
(``TORCH_API_*``, ``TRITON_API_*``, ``TF_API_*``, ``GATEWAY_*``); the gateway's backend URLs and
key file follow the others unless set explicitly.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.artifacts import ArtifactError
from contract.keys import KEY_FILE
from contract.manifest import Manifest, read_manifest
from contract.settings import SettingsError, load
from contract.stackinfo import STACK_FILE, StackInfo
from contract.tuning import TunedFileError
from gateway.config import Settings as GatewaySettings
from services.logsink import BACKUPS as LOG_BACKUPS
from services.logsink import MAX_BYTES as LOG_MAX_BYTES
from services.process import PortInUseError, Process, StartError, check_ports, log_tail, pid_alive, wait_until
from services.tf_api.settings import Settings as TfSettings
from services.torch_api.launcher import READY_LINE
from services.torch_api.settings import TorchApiSettings
from services.triton_api import repository as triton_repository
from services.triton_api.launcher import READY_LINE as TRITON_READY_LINE
from services.triton_api.settings import TritonApiSettings
from stack import serving

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("torch_api", "triton_api", "tf_api", "gateway")
#: The command each service runs; the Docker images run the same (tests/deploy checks the gateway's).
COMMANDS: dict[str, list[str]] = {
    "torch_api": ["python", "-m", "services.torch_api", "serve"],
    "triton_api": ["python", "-m", "services.triton_api", "serve"],
    "tf_api": ["python", "-m", "services.tf_api", "serve"],
    "gateway": ["python", "-m", "gateway"],
}


@dataclass(frozen=True)
class StackPaths:
    """Where the stack keeps its state and logs."""

    run_dir: Path
    log_dir: Path

    @classmethod
    def from_env(cls) -> StackPaths:
        """``STACK_RUN_DIR`` (default ``.run``) and ``STACK_LOG_DIR`` (default ``logs``)."""
        run_dir = Path(os.environ.get("STACK_RUN_DIR") or REPO / ".run").resolve()
        log_dir = Path(os.environ.get("STACK_LOG_DIR") or REPO / "logs").resolve()
        return cls(run_dir, log_dir)

    @property
    def pids(self) -> Path:
        return self.run_dir / "stack.pids.json"

    @property
    def info(self) -> Path:
        return self.run_dir / STACK_FILE

    def launcher_log(self, service: str) -> Path:
        return self.log_dir / service / "launcher.log"


@dataclass(frozen=True)
class Plan:
    """Each service's environment, the ports they will take, and the description of the stack."""

    envs: dict[str, dict[str, str]]
    ports: dict[str, tuple[str, int]]
    info: StackInfo

    @property
    def services(self) -> list[str]:
        """The services this plan starts, in order (Triton only where ``TRITON_API_MODELS`` is not ``none``)."""
        return [s for s in SERVICES if s in self.envs]


def _gateway_backends(torch_models: str, triton_models: str, manifest: Manifest) -> dict[str, list[str]]:
    """Which backends serve which model: those it has artifacts for, less the archives TorchServe does not load
    and the models Triton does not load (Triton's model names are TorchServe's archive names)."""
    loaded = {
        "torch": None if torch_models == "all" else set(torch_models.split(",")),
        "triton": None if triton_models == "all" else set(triton_models.split(",")),
    }
    name = {"torch": "{m}", "torch_ort": "{m}_ort", "triton": "{m}", "triton_ort": "{m}_ort"}

    def served(backend: str, model: str) -> bool:
        found = loaded.get(backend.removesuffix("_ort")) if backend in name else None
        return found is None or name[backend].format(m=model) in found

    return {m: [b for b in entry.backends if served(b, m)] for m, entry in manifest.models.items()}


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _archives(torch_models: str, manifest: Manifest) -> list[str]:
    if torch_models != "all":
        return torch_models.split(",")
    return [f"{m}{'_ort' if b == 'torch_ort' else ''}" for m, e in manifest.models.items() for b in e.backends
            if b in ("torch", "torch_ort")]  # fmt: skip


def logging_summary(torch: TorchApiSettings, tf: TfSettings, env: dict[str, str]) -> dict[str, str]:
    """How each stack logs, in words, for ``stack.json`` and the reports (part of the configuration's hash)."""
    if torch.logging == "production":
        access = "access log on" if torch.access_log else "no access log"
        torchserve = f"services/torch_api/log4j2.xml: frontend {torch.log_level.upper()}, workers INFO without the " \
            f"per-batch line, {access}, files roll at 10 MB × 3"  # fmt: skip
    else:
        torchserve = "TorchServe's built-in log4j2.xml: DEBUG, an access-log line per request, console copy unrotated"
    tf_access = "access log on" if tf.access_log else "no access log"
    gateway_level = env.get("GATEWAY_LOG_LEVEL", "warning").lower()
    gateway_access = "access log on" if env.get("GATEWAY_ACCESS_LOG", "").lower() in ("1", "true", "yes", "on") else (
        "no access log"
    )  # fmt: skip
    return {
        "torchserve": torchserve,
        "tf_server": f"{tf.log_level.upper()}, {tf_access}, compat.log rolls at {tf.log_max_bytes // 2**20} MB",
        "gateway": f"{gateway_level.upper()}, {gateway_access}; launcher logs roll at {LOG_MAX_BYTES // 2**20} MB",
    }


def plan(paths: StackPaths, tuned_path: Path | None = None) -> Plan:
    """What ``up`` will start; :class:`SettingsError`, :class:`ArtifactError` or :class:`TunedFileError`
    when it cannot. With ``tuned_path`` the tuned archives and batching window are written first
    (:mod:`stack.serving`)."""
    base = dict(os.environ)
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), base.get("PYTHONPATH")]))
    torch_env = {
        **base,
        "TORCH_API_RUN_DIR": base.get("TORCH_API_RUN_DIR", str(paths.run_dir / "torch_api")),
        "TORCH_API_LOG_DIR": base.get("TORCH_API_LOG_DIR", str(paths.log_dir / "torch_api")),
    }
    tf_env = {**base, "TF_API_LOG_DIR": base.get("TF_API_LOG_DIR", str(paths.log_dir / "tf_api"))}
    triton_env = {
        **base,
        "TRITON_API_RUN_DIR": base.get("TRITON_API_RUN_DIR", str(paths.run_dir / "triton_api")),
        "TRITON_API_LOG_DIR": base.get("TRITON_API_LOG_DIR", str(paths.log_dir / "triton_api")),
    }
    with _environ(triton_env):
        triton = load(TritonApiSettings)
    with _environ(torch_env):
        torch = load(TorchApiSettings)
    with _environ(tf_env):
        tf = load(TfSettings)
    manifest = read_manifest(torch.artifacts)
    tuned = serving.read_tuned(tuned_path, manifest) if tuned_path else None
    if tuned is not None:
        root, batching = serving.materialize(tuned, torch.artifacts, paths.run_dir / "tuned", tf.batching_config)
        torch_env["TORCH_API_ARTIFACTS"] = str(root)
        tf_env["TF_API_BATCHING_CONFIG"] = str(batching)
        base.setdefault("GATEWAY_MANIFEST", str(torch.artifacts / "manifest.json"))
        with _environ(torch_env):
            torch = load(TorchApiSettings)
        with _environ(tf_env):
            tf = load(TfSettings)
    triton_windows = None
    if triton.enabled:
        if tuned is not None and tuned.triton:
            assert tuned_path is not None
            triton_env["TRITON_API_TUNED"] = str(tuned_path.resolve())
        triton_names = triton.model_names(list(triton_repository.triton_models(manifest)))
        triton_windows = triton_repository.windows(triton_names, triton.instances, tuned)
    config = serving.summary(_archives(torch.models, manifest), tf.batching_config, tuned, tuned_path, triton_windows)
    config["logging"] = logging_summary(torch, tf, base)
    backends = _gateway_backends(torch.models, triton.models, manifest)
    if not triton.enabled:
        backends = {m: [b for b in names if not b.startswith("triton")] for m, names in backends.items()}
    triton_url = f"http://{triton.host}:{triton.http_port}"
    key_file = torch.run_dir / KEY_FILE
    gateway_env = {
        **base,
        "GATEWAY_TORCH_URL": base.get("GATEWAY_TORCH_URL", f"http://{torch.host}:{torch.inference_port}"),
        "GATEWAY_TORCH_KEY_FILE": base.get("GATEWAY_TORCH_KEY_FILE", str(key_file)),
        "GATEWAY_TF_URL": base.get("GATEWAY_TF_URL", f"http://{tf.host}:{tf.rest_port}"),
        "GATEWAY_TF_GRPC_TARGET": base.get("GATEWAY_TF_GRPC_TARGET", f"{tf.host}:{tf.grpc_port}"),
        "GATEWAY_MANIFEST": base.get("GATEWAY_MANIFEST", str(torch.artifacts / "manifest.json")),
        "GATEWAY_BACKENDS": base.get("GATEWAY_BACKENDS", json.dumps(backends)),
    }
    if triton.enabled:
        gateway_env.setdefault("GATEWAY_TRITON_URL", triton_url)
    with _environ(gateway_env):
        gateway = load(GatewaySettings)
    ports = {
        "TORCH_API_INFERENCE_PORT": (torch.host, torch.inference_port),
        "TORCH_API_MANAGEMENT_PORT": (torch.host, torch.management_port),
        "TORCH_API_METRICS_PORT": (torch.host, torch.metrics_port),
        "TORCH_API_GRPC_INFERENCE_PORT": (torch.host, torch.grpc_inference_port),
        "TORCH_API_GRPC_MANAGEMENT_PORT": (torch.host, torch.grpc_management_port),
        **(
            {
                "TRITON_API_HTTP_PORT": (triton.host, triton.http_port),
                "TRITON_API_GRPC_PORT": (triton.host, triton.grpc_port),
                "TRITON_API_METRICS_PORT": (triton.host, triton.metrics_port),
            }
            if triton.enabled
            else {}
        ),
        "TF_API_REST_PORT": (tf.host, tf.rest_port),
        "TF_API_GRPC_PORT": (tf.host, tf.grpc_port),
        "GATEWAY_PORT": (gateway.host, gateway.port),
    }
    if gateway.grpc_port:
        ports["GATEWAY_GRPC_PORT"] = (gateway.host, gateway.grpc_port)
    info = StackInfo(
        gateway=f"http://{gateway.host}:{gateway.port}",
        gateway_grpc=f"{gateway.host}:{gateway.grpc_port}" if gateway.grpc_port else None,
        torch=f"http://{torch.host}:{torch.inference_port}",
        torch_management=f"http://{torch.host}:{torch.management_port}",
        torch_metrics=f"http://{torch.host}:{torch.metrics_port}",
        torch_key_file=key_file,
        torch_models=torch.models,
        tf_rest=f"http://{tf.host}:{tf.rest_port}",
        tf_grpc=f"{tf.host}:{tf.grpc_port}",
        tf_server="unknown",
        triton=triton_url if triton.enabled else None,
        triton_grpc=f"{triton.host}:{triton.grpc_port}" if triton.enabled else None,
        triton_metrics=f"http://{triton.host}:{triton.metrics_port}" if triton.enabled else None,
        triton_models=triton.models,
        models=manifest.names,
        gateway_backends={m: list(b) for m, b in (gateway.backends or backends).items()},
        run_dir=paths.run_dir,
        log_dir=paths.log_dir,
        artifacts=torch.artifacts.resolve(),
        serving=config,
        config_hash=serving.config_hash(config),
    )
    envs = {"torch_api": torch_env, "triton_api": triton_env, "tf_api": tf_env, "gateway": gateway_env}
    if not triton.enabled:
        del envs["triton_api"]
    return Plan(envs, ports, info)


def _get(url: str, timeout: float = 3.0) -> tuple[int, dict[str, str], Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, dict(exc.headers), json.loads(body) if body.startswith(b"{") else None


class _Readiness:
    """The readiness probe of each service; the TF probe also learns which TF server answers."""

    def __init__(self, paths: StackPaths, info: StackInfo) -> None:
        self.paths = paths
        self.info = info
        self.tf_server = "unknown"

    def probe(self, service: str) -> bool:
        if service in ("torch_api", "triton_api"):
            line = READY_LINE if service == "torch_api" else TRITON_READY_LINE
            log = self.paths.launcher_log(service)
            return log.exists() and line in log.read_text(errors="replace")
        if service == "tf_api":
            for model in self.info.models:
                status, headers, body = _get(f"{self.info.tf_rest}/v1/models/{model}")
                states = [v.get("state") for v in (body or {}).get("model_version_status", [])]
                if status != 200 or "AVAILABLE" not in states:
                    return False
                self.tf_server = "duoserve-compat" if headers.get("X-TF-Server") else "tensorflow_model_server"
            return True
        status, _, body = _get(f"{self.info.gateway}/health/ready")
        return status == 200 and all(all(b.values()) for b in (body or {}).get("models", {}).values())


def _start(paths: StackPaths, service: str, env: dict[str, str]) -> Process:
    # the launcher's output (and, for the gateway, all of its log) rolls over: services/logsink.py
    return Process.python(
        service, COMMANDS[service][1:], paths.launcher_log(service), env=env, rotate=(LOG_MAX_BYTES, LOG_BACKUPS)
    )


def _wait(paths: StackPaths, pending: list[str], pids: dict[str, int], readiness: _Readiness, timeout_s: float) -> None:
    """Wait for each pending service in turn; any service of the stack dying fails the wait."""
    deadline = time.monotonic() + timeout_s

    def dead() -> str | None:
        gone = [s for s in pending if not pid_alive(pids[s])]
        # the one that died says why (Triton: the model it could not load), whichever service is awaited
        return f"({gone[0]}) exited during start-up\n{_tail(paths, gone[0])}" if gone else None

    for service in pending:
        wait_until(
            lambda service=service: readiness.probe(service),  # type: ignore[misc]
            what=f"stack: {service}",
            timeout_s=max(1.0, deadline - time.monotonic()),
            failed=dead,
            tail=lambda service=service: _tail(paths, service),  # type: ignore[misc]
            interval_s=0.5,
        )
        print(f"stack: {service} ready", flush=True)


def _tail(paths: StackPaths, service: str) -> str:
    return f"--- {paths.launcher_log(service)} ---\n{log_tail(paths.launcher_log(service))}"


def up(paths: StackPaths, timeout_s: float, tuned_path: Path | None = None) -> int:
    """Start everything and wait until ready; on failure stop everything and return 1 (2: bad settings
    or a bad tuned file)."""
    if paths.pids.exists():
        alive = {s: p for s, p in json.loads(paths.pids.read_text()).items() if pid_alive(p)}
        if alive:
            print(f"stack: already running ({alive}); `make down` first", file=sys.stderr)
            return 1
    try:
        check_ports(plan(paths).ports)  # before any repacking a tuned file asks for
        planned = plan(paths, tuned_path)
    except (SettingsError, ArtifactError, PortInUseError, TunedFileError, OSError) as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 2
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    pids: dict[str, int] = {}
    for service in planned.services:
        pids[service] = _start(paths, service, planned.envs[service]).pid
        paths.pids.write_text(json.dumps(pids))
    print(f"stack: starting {', '.join(planned.services)} (logs in {paths.log_dir})", flush=True)
    readiness = _Readiness(paths, planned.info)
    try:
        _wait(paths, planned.services, pids, readiness, timeout_s)
    except StartError as exc:
        print(exc, file=sys.stderr, flush=True)
        down(paths)
        return 1
    info = planned.info.model_copy(update={"tf_server": readiness.tf_server, "pids": pids})
    info.write(paths.info)
    tuned_note = f", tuned by {tuned_path}" if tuned_path else ""
    print(
        f"stack: up; gateway {info.gateway}, TF server: {info.tf_server}, config {info.config_hash}{tuned_note}; "
        f"{paths.info}",
        flush=True,
    )
    return 0


def stop_service(paths: StackPaths, service: str, grace_s: float = 30.0) -> None:
    """Stop one service's process group (the fault tests kill a backend this way)."""
    pids: dict[str, int] = json.loads(paths.pids.read_text())
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pids[service], signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _group_alive(pids[service]) and time.monotonic() < deadline:
        pid_alive(pids[service])
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pids[service], signal.SIGKILL)


def restart(paths: StackPaths, service: str, timeout_s: float) -> int:
    """Stop ``service`` if it runs, start it again with the stack's settings, wait until ready."""
    if not paths.pids.exists():
        print("stack: not up", file=sys.stderr)
        return 1
    stop_service(paths, service)
    tuned = StackInfo.read(paths.info).serving.get("tuned") if paths.info.exists() else None
    planned = plan(paths, Path(tuned) if tuned else None)
    if service not in planned.envs:
        print(f"stack: {service} is not part of this stack (TRITON_API_MODELS=none)", file=sys.stderr)
        return 1
    if service in ("torch_api", "triton_api"):
        paths.launcher_log(service).unlink(missing_ok=True)
    pids: dict[str, int] = json.loads(paths.pids.read_text())
    pids[service] = _start(paths, service, planned.envs[service]).pid
    paths.pids.write_text(json.dumps(pids))
    try:
        _wait(paths, [service], pids, _Readiness(paths, planned.info), timeout_s)
    except StartError as exc:
        print(exc, file=sys.stderr, flush=True)
        return 1
    if paths.info.exists():
        StackInfo.read(paths.info).model_copy(update={"pids": pids}).write(paths.info)
    return 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def down(paths: StackPaths, grace_s: float = 30.0) -> int:
    """Stop every process group the stack started; idempotent."""
    if not paths.pids.exists():
        print("stack: nothing running")
        return 0
    pids: dict[str, int] = json.loads(paths.pids.read_text())
    # the gateway first, so it stops sending before the backends go
    for service in reversed(SERVICES):
        if service in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pids[service], signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_group_alive(p) for p in pids.values()):
        for pid in pids.values():
            pid_alive(pid)  # reap our own children
        time.sleep(0.2)
    for service, pid in pids.items():
        if _group_alive(pid):
            print(f"stack: {service} did not stop in {grace_s:.0f} s; killing it", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    paths.pids.unlink(missing_ok=True)
    paths.info.unlink(missing_ok=True)
    print("stack: down", flush=True)
    return 0
