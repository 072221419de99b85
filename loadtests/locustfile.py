"""Locust users, one per target: TorchServe direct (TorchScript, ONNX Runtime), the TF
server's REST API direct, the gateway pinned to each backend (/v1, and the Open Inference
Protocol's /v2 with JSON or binary tensors), and the gateway's /compare.

Run it with the project's runner (``python -m loadtests run``), with plain Locust
(``locust -f loadtests/locustfile.py --headless -u 8 -r 8 -t 30s TorchDirect``), or
distributed (``--master`` / ``--worker``). Hosts come from ``--stack`` (the stack.json
that ``python -m stack up`` writes) or the explicit ``--gateway-url``,
``--torch-url``, ``--tf-url`` options; each option also reads a ``LOADTEST_*``
environment variable and a ``locust.conf`` key. Every target sends the same seeded
bodies (:mod:`loadtests.payload`) and checks every answer (:mod:`loadtests.checks`).
"""

# mypy: disable-error-code="untyped-decorator"
# (locust's EventHook.add_listener is untyped)
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locust import FastHttpUser, events, run_single_user, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from contract.manifest import ModelEntry
from contract.oip import HEADER_LENGTH
from loadtests import checks, payload
from loadtests.arrivals import PoissonSchedule, user_seed
from loadtests.locustguard import guard_web_ui, host_problem
from loadtests.targets import Endpoints, Target, get_target, headers, path, torch_key

log = logging.getLogger(__name__)


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("duoserve", "what to load and how to judge it")
    group.add_argument("--stack", env_var="LOADTEST_STACK", default=".run/stack.json", help="stack.json of the stack")
    group.add_argument("--gateway-url", env_var="LOADTEST_GATEWAY_URL", default="", help="overrides stack.json")
    group.add_argument("--torch-url", env_var="LOADTEST_TORCH_URL", default="", help="overrides stack.json")
    group.add_argument("--tf-url", env_var="LOADTEST_TF_URL", default="", help="TF REST; overrides stack.json")
    group.add_argument("--torch-key-file", env_var="LOADTEST_TORCH_KEY_FILE", default="", help="TorchServe key file")
    group.add_argument("--api-key", env_var="LOADTEST_API_KEY", default="", help="the gateway's API key, if any")
    group.add_argument("--model", env_var="LOADTEST_MODEL", default="digits", help="model to load")
    group.add_argument("--batch", env_var="LOADTEST_BATCH", type=int, default=1, help="instances per request")
    group.add_argument("--seed", env_var="LOADTEST_SEED", type=int, default=0, help="payload seed")
    group.add_argument("--payloads", env_var="LOADTEST_PAYLOADS", type=int, default=16, help="distinct bodies")
    group.add_argument(
        "--pace",
        env_var="LOADTEST_PACE",
        type=float,
        default=0.0,
        help="requests/s per user, Poisson arrivals (open loop); 0 = closed loop (no wait)",
    )
    group.add_argument(
        "--arrival-seed",
        env_var="LOADTEST_ARRIVAL_SEED",
        type=int,
        default=0,
        help="seed of the users' Poisson schedules",
    )
    group.add_argument("--arrival-label", env_var="LOADTEST_ARRIVAL_LABEL", default="",
                       help="mixed into each user's schedule seed (the runner passes the run's label)")  # fmt: skip
    group.add_argument("--max-fail-ratio", env_var="LOADTEST_MAX_FAIL_RATIO", type=float, default=0.01)
    group.add_argument("--max-p99-ms", env_var="LOADTEST_MAX_P99_MS", type=float, default=0.0, help="0 = no limit")


@dataclass
class Settings:
    """What every user of one Locust environment shares."""

    endpoints: Endpoints
    model: ModelEntry
    batch: int
    bodies: list[bytes]
    pace: float
    max_fail_ratio: float
    max_p99_ms: float
    compare_backends: list[str]
    key: str | None = None
    seed: int = 0
    sample: payload.Sample | None = None
    #: the bodies in each encoding but v1's (``bodies``), made when a target first needs them
    encoded: dict[str, list[payload.Encoded]] = field(default_factory=dict)
    arrival_seed: int = 0
    arrival_label: str = ""
    _users: itertools.count[int] = field(default_factory=itertools.count)

    def next_user(self) -> int:
        """A number for each user started in this environment (its schedule's seed)."""
        return next(self._users)

    def reload_key(self) -> None:
        self.key = torch_key(self.endpoints.torch_key_file)

    def pool(self, encoding: payload.Encoding) -> list[payload.Encoded]:
        """The shared bodies written in ``encoding`` (the same instances as ``bodies``)."""
        if encoding == "v1":
            return [(b, {}) for b in self.bodies]
        if encoding not in self.encoded:
            self.encoded[encoding] = payload.encoded_pool(
                self.model, self.batch, self.seed, len(self.bodies), self.sample, encoding
            )
        return self.encoded[encoding]


def settings_from_options(options: Any) -> Settings:
    """Build :class:`Settings` from Locust's parsed options (command line, env, locust.conf)."""
    stack = Path(options.stack)
    if stack.exists():
        endpoints = Endpoints.from_stack_json(stack)
    elif options.gateway_url or options.torch_url or options.tf_url:
        endpoints = Endpoints(gateway="", torch="", tf_rest="")
    else:
        raise FileNotFoundError(f"{stack}: no stack.json and no --gateway-url/--torch-url/--tf-url given")
    endpoints = endpoints.with_overrides(
        options.gateway_url, options.torch_url, options.tf_url, options.torch_key_file or None, options.api_key or None
    )
    model = payload.load_model(options.model)
    sample = payload.load_sample(model)
    settings = Settings(
        endpoints=endpoints,
        model=model,
        batch=options.batch,
        bodies=payload.pool(model, options.batch, options.seed, options.payloads, sample),
        pace=options.pace,
        max_fail_ratio=options.max_fail_ratio,
        max_p99_ms=options.max_p99_ms,
        compare_backends=endpoints.compare_backends(options.model),
        seed=options.seed,
        sample=sample,
        arrival_seed=getattr(options, "arrival_seed", 0),
        arrival_label=getattr(options, "arrival_label", ""),
    )
    if endpoints.torch_key_file and Path(endpoints.torch_key_file).exists():
        settings.reload_key()
    return settings


@events.init.add_listener
def _guard_ui(environment: Any, web_ui: Any = None, **_: Any) -> None:
    """No web UI beyond loopback without a login; with ``--web-login``, the login checks a password."""
    guard_web_ui(web_ui, environment.parsed_options)


@events.test_start.add_listener
def configure(environment: Any, **_: Any) -> None:
    """Read the options and point every user class at its host.

    On ``test_start``, not ``init``: a worker has the master's options only from then on.
    The master sends no requests and needs no settings.
    """
    if isinstance(environment.runner, MasterRunner):
        return
    if environment.parsed_options is None or not hasattr(environment.parsed_options, "stack"):
        return
    environment.duoserve = settings = settings_from_options(environment.parsed_options)
    for user_class in environment.user_classes or ALL_USERS:
        if issubclass(user_class, TargetUser) and not environment.host:
            user_class.host = settings.endpoints.host(user_class.target())


@events.quitting.add_listener
def _gate(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    # workers report to the master, which holds the totals
    if isinstance(environment.runner, WorkerRunner) or options is None or not hasattr(options, "max_fail_ratio"):
        return
    total = environment.stats.total
    p99 = total.get_response_time_percentile(0.99) if total.num_requests else None
    problem = checks.gate(total.num_requests, total.num_failures, p99, options.max_fail_ratio, options.max_p99_ms)
    if problem:
        log.error("gate failed: %s", problem)
        environment.process_exit_code = 1


class TargetUser(FastHttpUser):
    """Posts the shared bodies to one target and checks every answer."""

    abstract = True
    target_name = ""
    # FastHttpUser keeps one connection per user; say so, as an explicit choice
    concurrency = 1

    @classmethod
    def target(cls) -> Target:
        return get_target(cls.target_name)

    def on_start(self) -> None:
        self.settings: Settings = self.environment.duoserve
        self._index = 0
        self._target = self.target()
        self._path = path(self._target, self.settings.model.name)
        self._bodies = self.settings.pool(self._target.encoding)
        refused = host_problem(
            self._target.name,
            self.settings.endpoints.host(self._target),
            self.host,
            bool(self._headers().keys() & {"Authorization", "X-API-Key"}),
        )
        if refused:
            # nothing is sent: one failure per user says why, in the UI, the CSVs and the log
            log.error(refused)
            self.environment.events.request.fire(
                request_type="POST", name=self._target.name, response_time=0, response_length=0,
                exception=PermissionError(refused), context={},
            )  # fmt: skip
            raise StopUser()
        self._schedule: PoissonSchedule | None = None
        if self.settings.pace > 0:
            seed = user_seed(self.settings.arrival_seed, self.settings.arrival_label, self.settings.next_user())
            self._schedule = PoissonSchedule(self.settings.pace, seed, time.perf_counter())
            # Locust runs a user's first task at once; the schedule's first arrival is one gap later
            time.sleep(self._schedule.wait(time.perf_counter()))  # gevent's cooperative sleep

    def wait_time(self) -> float:
        """Closed loop without ``--pace``; else until this user's next Poisson arrival (open loop)."""
        return self._schedule.wait(time.perf_counter()) if self._schedule else 0.0

    def _headers(self) -> dict[str, str]:
        return headers(self.settings.endpoints, self._target, self.settings.key)

    @task
    def predict(self) -> None:
        data, extra = self._bodies[self._index % len(self._bodies)]
        self._index += 1
        name = self._target.name
        late_ms = 0.0
        if self._schedule is not None:
            # latency counts from when the request was due, not from when this user got to send it
            late_ms = max(0.0, (time.perf_counter() - self._schedule.advance()) * 1000)
        post = self.client.post(
            self._path,
            data=data,
            headers={**self._headers(), **extra},
            name=name,
            catch_response=True,
            context={"late_ms": late_ms},
        )
        with post as resp:
            if resp.status_code != 200:
                text = (resp.text or "")[:200]
                if self._target.kind == "torch" and "InvalidKeyException" in text:
                    self.settings.reload_key()  # TorchServe restarted or the key expired
                resp.failure(f"HTTP {resp.status_code}: {text}")
                return
            if self._target.kind in ("v2", "v2_binary", "triton"):
                problem = checks.check_v2(
                    resp.content or b"",
                    resp.headers.get(HEADER_LENGTH),
                    self.settings.model,
                    self.settings.batch,
                    None if self._target.kind == "triton" else self._target.backend,
                )
                if problem:
                    resp.failure(problem)
                else:
                    resp.success()
                return
            try:
                answer = resp.json()
            except ValueError:
                resp.failure("answer is not JSON")
                return
            problem = self._check(answer)
            if problem:
                resp.failure(problem)
            else:
                resp.success()

    def _check(self, answer: Any) -> str | None:
        model, rows = self.settings.model, self.settings.batch
        if self._target.kind == "compare":
            return checks.check_compare(answer, model, rows, self.settings.compare_backends)
        backend = self._target.backend if self._target.kind == "gateway" else None
        return checks.check_predict(answer, model, rows, backend)


class TorchDirect(TargetUser):
    target_name = "torch"


class TorchOrtDirect(TargetUser):
    target_name = "torch_ort"


class TritonDirect(TargetUser):
    target_name = "triton"


class TritonOrtDirect(TargetUser):
    target_name = "triton_ort"


class TfDirect(TargetUser):
    target_name = "tf"


class GatewayTorch(TargetUser):
    target_name = "gw_torch"


class GatewayTorchOrt(TargetUser):
    target_name = "gw_torch_ort"


class GatewayTriton(TargetUser):
    target_name = "gw_triton"


class GatewayTritonOrt(TargetUser):
    target_name = "gw_triton_ort"


class GatewayTf(TargetUser):
    target_name = "gw_tf"


class GatewayCompare(TargetUser):
    target_name = "gw_compare"


class GatewayV2Torch(TargetUser):
    target_name = "gw_v2_torch"


class GatewayV2TorchOrt(TargetUser):
    target_name = "gw_v2_torch_ort"


class GatewayV2Tf(TargetUser):
    target_name = "gw_v2_tf"


class GatewayV2BinaryTorch(TargetUser):
    target_name = "gw_v2b_torch"


class GatewayV2BinaryTorchOrt(TargetUser):
    target_name = "gw_v2b_torch_ort"


class GatewayV2BinaryTf(TargetUser):
    target_name = "gw_v2b_tf"


class GatewayV2BinaryTriton(TargetUser):
    target_name = "gw_v2b_triton"


class GatewayV2BinaryTritonOrt(TargetUser):
    target_name = "gw_v2b_triton_ort"


ALL_USERS: list[type[TargetUser]] = [
    TorchDirect, TorchOrtDirect, TritonDirect, TritonOrtDirect, TfDirect, GatewayTorch, GatewayTorchOrt,
    GatewayTriton, GatewayTritonOrt, GatewayTf, GatewayCompare, GatewayV2Torch, GatewayV2TorchOrt, GatewayV2Tf,
    GatewayV2BinaryTorch, GatewayV2BinaryTorchOrt, GatewayV2BinaryTf, GatewayV2BinaryTriton, GatewayV2BinaryTritonOrt,
]  # fmt: skip
USER_FOR_TARGET: dict[str, type[TargetUser]] = {cls.target_name: cls for cls in ALL_USERS}

if __name__ == "__main__":
    # debug one user against a running stack: python -m loadtests.locustfile [--model mlp] ...
    run_single_user(TorchDirect)
