"""``make up`` / ``make down``: the native stack (TorchServe, the TF server, the gateway) in the background.

``python -m services.stack up`` starts the three launchers, each in its own process
group with its output under ``$STACK_LOG_DIR/<service>/``, and returns once every one is
ready: TorchServe's launcher has seen every model's workers ready, the TF server reports
every model AVAILABLE, and the gateway's ``/health/ready`` lists every backend ready.
It then writes ``$STACK_RUN_DIR/stack.json`` (URLs, key file, which TF server runs) for
the load tests. If anything fails or times out, it prints that service's log tail,
stops everything and exits 1. ``down`` stops all process groups (TERM, then KILL) and
is safe to run twice. Ports and options pass through the services' own variables
(``TORCH_API_*``, ``TF_API_*``, ``GATEWAY_*``); the gateway's backend URLs and key file
follow the other two unless set explicitly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.common.artifacts import load_manifest
from services.tf_api.settings import SettingsError, load_settings
from services.torch_api.launcher import READY_LINE
from services.torch_api.settings import TorchApiSettings

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("torch_api", "tf_api", "gateway")
#: The command each service runs; the Docker images run the same (tests/deploy checks the gateway's).
COMMANDS: dict[str, list[str]] = {
    "torch_api": ["python", "-m", "services.torch_api", "serve"],
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
        return self.run_dir / "stack.json"

    def launcher_log(self, service: str) -> Path:
        return self.log_dir / service / "launcher.log"


def _gateway_backends(torch_models: str, all_models: list[str]) -> dict[str, list[str]]:
    """Which backends serve which model when TorchServe loads only some archives."""
    loaded = (
        set(all_models) | {f"{m}_ort" for m in all_models} if torch_models == "all" else set(torch_models.split(","))
    )
    return {
        m: [b for b, name in (("torch", m), ("torch_ort", f"{m}_ort")) if name in loaded] + ["tf"] for m in all_models
    }


def plan(paths: StackPaths) -> tuple[dict[str, dict[str, str]], dict[str, Any]]:
    """Each service's environment, and the stack description written to ``stack.json``."""
    base = dict(os.environ)
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), base.get("PYTHONPATH")]))
    torch_env = {
        **base,
        "TORCH_API_RUN_DIR": base.get("TORCH_API_RUN_DIR", str(paths.run_dir / "torch_api")),
        "TORCH_API_LOG_DIR": base.get("TORCH_API_LOG_DIR", str(paths.log_dir / "torch_api")),
    }
    tf_env = {**base, "TF_API_LOG_DIR": base.get("TF_API_LOG_DIR", str(paths.log_dir / "tf_api"))}
    with _environ(torch_env):
        torch = TorchApiSettings()
    with _environ(tf_env):
        tf = load_settings()
    manifest = load_manifest(torch.artifacts)
    gateway_env = {
        **base,
        "GATEWAY_TORCH_URL": base.get("GATEWAY_TORCH_URL", f"http://{torch.host}:{torch.inference_port}"),
        "GATEWAY_TORCH_KEY_FILE": base.get("GATEWAY_TORCH_KEY_FILE", str(torch.run_dir / "key_file.json")),
        "GATEWAY_TF_URL": base.get("GATEWAY_TF_URL", f"http://{tf.host}:{tf.rest_port}"),
        "GATEWAY_TF_GRPC_TARGET": base.get("GATEWAY_TF_GRPC_TARGET", f"{tf.host}:{tf.grpc_port}"),
        "GATEWAY_MANIFEST": base.get("GATEWAY_MANIFEST", str(torch.artifacts / "manifest.json")),
        "GATEWAY_BACKENDS": base.get(
            "GATEWAY_BACKENDS", json.dumps(_gateway_backends(torch.models, list(manifest["models"])))
        ),
    }
    gateway_host = base.get("GATEWAY_HOST", "127.0.0.1")
    gateway_port = base.get("GATEWAY_PORT", "8000")
    info: dict[str, Any] = {
        "gateway": f"http://{gateway_host}:{gateway_port}",
        "torch": f"http://{torch.host}:{torch.inference_port}",
        "torch_metrics": f"http://{torch.host}:{torch.metrics_port}",
        "torch_key_file": str(torch.run_dir / "key_file.json"),
        "torch_models": torch.models,
        "tf_rest": f"http://{tf.host}:{tf.rest_port}",
        "tf_grpc": f"{tf.host}:{tf.grpc_port}",
        "models": list(manifest["models"]),
        "gateway_backends": json.loads(gateway_env["GATEWAY_BACKENDS"]),
        "log_dir": str(paths.log_dir),
    }
    return {"torch_api": torch_env, "tf_api": tf_env, "gateway": gateway_env}, info


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Any:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _get(url: str, timeout: float = 3.0) -> tuple[int, dict[str, str], Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, dict(exc.headers), json.loads(body) if body.startswith(b"{") else None


def _ready(service: str, paths: StackPaths, info: dict[str, Any]) -> bool:
    if service == "torch_api":
        log = paths.launcher_log(service)
        return log.exists() and READY_LINE in log.read_text(errors="replace")
    if service == "tf_api":
        for model in info["models"]:
            status, headers, body = _get(f"{info['tf_rest']}/v1/models/{model}")
            states = [v.get("state") for v in (body or {}).get("model_version_status", [])]
            if status != 200 or "AVAILABLE" not in states:
                return False
            info["tf_server"] = "duoserve-compat" if headers.get("X-TF-Server") else "tensorflow_model_server"
        return True
    status, _, body = _get(f"{info['gateway']}/health/ready")
    return status == 200 and all(all(b.values()) for b in (body or {}).get("models", {}).values())


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def up(paths: StackPaths, timeout_s: float) -> int:
    """Start everything and wait until ready; on failure stop everything and return 1."""
    if paths.pids.exists():
        alive = {s: p for s, p in json.loads(paths.pids.read_text()).items() if _alive(p)}
        if alive:
            print(f"stack: already running ({alive}); `make down` first", file=sys.stderr)
            return 1
    try:
        envs, info = plan(paths)
    except (ValidationError, SettingsError, ValueError, OSError) as exc:
        print(f"stack: bad settings or artifacts: {exc}", file=sys.stderr)
        return 2
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    pids: dict[str, int] = {}
    for service in SERVICES:
        pids[service] = _start(paths, service, envs[service])
        paths.pids.write_text(json.dumps(pids))
    print(f"stack: starting {', '.join(SERVICES)} (logs in {paths.log_dir})", flush=True)
    code = _wait(paths, list(SERVICES), pids, info, timeout_s)
    if code == 0:
        paths.info.write_text(json.dumps(info, indent=2) + "\n")
        print(f"stack: up; gateway {info['gateway']}, TF server: {info.get('tf_server')}; {paths.info}", flush=True)
    return code


def _start(paths: StackPaths, service: str, env: dict[str, str]) -> int:
    log = paths.launcher_log(service)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, *COMMANDS[service][1:]]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc.pid


def _wait(paths: StackPaths, pending: list[str], pids: dict[str, int], info: dict[str, Any], timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while pending:
        for service in list(pending):
            if not _alive(pids[service]):
                return _fail(paths, service, "exited during start-up")
            with contextlib.suppress(OSError, ValueError):
                if _ready(service, paths, info):
                    pending.remove(service)
                    print(f"stack: {service} ready", flush=True)
        if pending and time.monotonic() > deadline:
            return _fail(paths, pending[0], f"not ready after {timeout_s:.0f} s")
        time.sleep(0.5)
    return 0


def stop_service(paths: StackPaths, service: str, grace_s: float = 30.0) -> None:
    """Stop one service's process group (the fault tests kill a backend this way)."""
    pids: dict[str, int] = json.loads(paths.pids.read_text())
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pids[service], signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _group_alive(pids[service]) and time.monotonic() < deadline:
        _alive(pids[service])
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pids[service], signal.SIGKILL)


def restart(paths: StackPaths, service: str, timeout_s: float) -> int:
    """Stop ``service`` if it runs, start it again with the stack's settings, wait until ready."""
    if not paths.pids.exists():
        print("stack: not up", file=sys.stderr)
        return 1
    stop_service(paths, service)
    envs, info = plan(paths)
    if service == "torch_api":
        paths.launcher_log(service).unlink(missing_ok=True)
    pids: dict[str, int] = json.loads(paths.pids.read_text())
    pids[service] = _start(paths, service, envs[service])
    paths.pids.write_text(json.dumps(pids))
    return _wait(paths, [service], pids, info, timeout_s)


def _fail(paths: StackPaths, service: str, why: str) -> int:
    print(f"stack: {service} {why}\n--- {paths.launcher_log(service)} ---\n{_tail(paths.launcher_log(service))}",
          file=sys.stderr, flush=True)  # fmt: skip
    down(paths)
    return 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    return True


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
            _alive(pid)  # reap our own children
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


def main(argv: list[str] | None = None) -> int:
    """``up``, ``down``, ``status`` or ``restart SERVICE``."""
    parser = argparse.ArgumentParser(prog="python -m services.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "restart"])
    parser.add_argument("service", nargs="?", choices=SERVICES, help="for restart")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("STACK_READY_TIMEOUT_S", "300")))
    args = parser.parse_args(argv)
    paths = StackPaths.from_env()
    if args.command == "up":
        return up(paths, args.timeout)
    if args.command == "down":
        return down(paths)
    if args.command == "restart":
        if not args.service:
            parser.error("restart needs a service")
        return restart(paths, args.service, args.timeout)
    if not paths.info.exists():
        print("stack: not up")
        return 1
    print(paths.info.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
