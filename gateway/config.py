"""The gateway's one settings class: every knob comes from a ``GATEWAY_*`` environment variable.

A bad value fails start-up with :class:`SettingsError`, whose message names the variable
(``GATEWAY_POLICIES: ...``). Policies and backend assignments are JSON; they are checked
against each other here and against the manifest's models in :func:`check_against_models`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.artifacts import MANIFEST_NAME, default_root
from contract.settings import SettingsError, load

__all__ = ["ENV_PREFIX", "PolicyConfig", "Settings", "SettingsError", "env_name", "load_settings"]

ENV_PREFIX = "GATEWAY_"
BackendName = Literal["torch", "torch_ort", "triton", "triton_ort", "tf"]
BACKEND_NAMES: tuple[BackendName, ...] = ("torch", "torch_ort", "triton", "triton_ort", "tf")
#: Triton's backends: served only where ``GATEWAY_TRITON_URL`` says where Triton is
TRITON_BACKENDS: tuple[BackendName, ...] = ("triton", "triton_ort")


def env_name(field: str) -> str:
    """``policies`` -> ``GATEWAY_POLICIES``."""
    return ENV_PREFIX + field.upper()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShadowConfig(_Strict):
    """Mirror ``share`` of a model's requests to ``backend`` after answering the caller."""

    backend: BackendName
    share: float = Field(default=0.1, ge=0.0, le=1.0)


#: the live percentiles a hedge may wait for
HEDGE_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}


class HedgeConfig(_Strict):
    """Send the same request to the policy's next backend when the first has not answered ``after``.

    ``after``: a percentile of the first backend's live latency for the model (``"p95"``; p50,
    p90, p95, p99) or a fixed time in ms. At most ``max_share`` of the model's requests over
    the retry budget's window are hedged. The first good answer wins; the other is cancelled.
    """

    after: float | str = "p95"
    max_share: float = Field(default=0.05, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _after(self) -> HedgeConfig:
        if isinstance(self.after, str):
            if self.after not in HEDGE_PERCENTILES:
                raise ValueError(f'hedge "after" must be one of {", ".join(HEDGE_PERCENTILES)} or a time in ms')
        elif self.after <= 0:
            raise ValueError('hedge "after" in ms must be positive')
        return self

    def percentile(self) -> float | None:
        """The live percentile to wait for, or None for a fixed time."""
        return HEDGE_PERCENTILES[self.after] if isinstance(self.after, str) else None


class PolicyConfig(_Strict):
    """How one model's requests are routed.

    - ``fixed``: always ``backend``.
    - ``weighted``: ``weights`` (backend -> non-negative share).
    - ``fastest``: lowest EWMA latency of two random candidates (``backends``, default all),
      with ``probe_share`` of requests sent to a uniformly random one so no backend starves.
    - ``failover``: ``order``; the next one only when the previous one failed.

    Every policy but ``fixed`` has a next backend for a retry (a refused, reset or cut-off
    call) and, with ``hedge``, for a hedged request.
    """

    policy: Literal["fixed", "weighted", "fastest", "failover"] = "fixed"
    backend: BackendName | None = None
    weights: dict[BackendName, Annotated[float, Field(ge=0.0)]] | None = None
    backends: list[BackendName] | None = None
    order: list[BackendName] | None = None
    probe_share: float = Field(default=0.05, ge=0.0, le=1.0)
    alpha: float = Field(default=0.2, gt=0.0, le=1.0)
    shadow: ShadowConfig | None = None
    hedge: HedgeConfig | None = None

    @model_validator(mode="after")
    def _complete(self) -> PolicyConfig:
        if self.policy == "fixed" and self.backend is None:
            raise ValueError('policy "fixed" needs "backend"')
        if self.policy == "weighted" and (not self.weights or sum(self.weights.values()) <= 0):
            raise ValueError('policy "weighted" needs "weights" with a positive total')
        if self.policy == "failover" and not self.order:
            raise ValueError('policy "failover" needs a non-empty "order"')
        if self.hedge is not None and self.policy == "fixed":
            raise ValueError('"hedge" needs a second backend: use "failover", "weighted" or "fastest"')
        return self

    def named_backends(self) -> set[str]:
        """Every backend this policy (and its shadow) may call."""
        names: set[str] = set()
        if self.backend:
            names.add(self.backend)
        names.update(self.weights or {})
        names.update(self.backends or [])
        names.update(self.order or [])
        if self.shadow:
            names.add(self.shadow.backend)
        return names


def _default_manifest() -> Path:
    return default_root() / MANIFEST_NAME


class Settings(BaseSettings):
    """Gateway configuration; see the README's table of ``GATEWAY_*`` variables."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: the Open Inference Protocol's gRPC service (Triton's convention: HTTP 8000, gRPC 8001); 0 turns it off
    grpc_port: int = Field(default=8001, ge=0, le=65535)
    #: warnings and errors only by default (production); the gateway writes no line per request
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    #: one uvicorn access-log line per request, off by default in runs and benchmarks
    access_log: bool = False

    torch_url: HttpUrl = HttpUrl("http://127.0.0.1:8080")
    #: TorchServe's ``key_file.json``; None sends no token (TorchServe with token auth off).
    torch_key_file: Path | None = None
    #: Triton's HTTP port (Open Inference Protocol, binary tensors); None: no ``triton``/``triton_ort`` backends.
    triton_url: HttpUrl | None = None
    tf_url: HttpUrl = HttpUrl("http://127.0.0.1:8501")
    tf_protocol: Literal["rest", "grpc"] = "rest"
    tf_grpc_target: str = "127.0.0.1:8500"
    http_client: Literal["h1", "aiohttp", "httpx"] = "h1"

    manifest: Path = Field(default_factory=_default_manifest)
    #: model -> backends that serve it; None: every backend serves every model in the manifest.
    backends: dict[str, list[BackendName]] | None = None
    #: model -> policy; a model not listed is routed ``fixed`` to its first backend.
    policies: dict[str, PolicyConfig] = Field(default_factory=dict)

    max_body_bytes: int = Field(default=128 * 1024 * 1024, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0, description="whole request body must arrive within this")
    header_timeout_s: float = Field(default=10.0, gt=0, description="request line and headers must arrive within this")
    #: worker processes, each with its own SO_REUSEPORT socket; stats and metrics are merged across them
    workers: int = Field(default=1, ge=1, le=64)
    max_concurrency: int = Field(default=512, gt=0, description="ceiling of the adaptive in-flight limit per backend")
    min_concurrency: int = Field(default=64, gt=0, description="floor (and start) of the adaptive in-flight limit")
    slow_call_s: float = Field(default=1.0, gt=0, description="a call slower than this shrinks the in-flight limit")
    pool_size: int = Field(default=512, gt=0, description="open connections per backend")
    connect_timeout_s: float = Field(default=1.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    ready_timeout_s: float = Field(default=1.0, gt=0)
    retry_after_s: int = Field(default=1, ge=0)
    breaker_failures: int = Field(default=5, gt=0)
    breaker_cooldown_s: float = Field(default=2.0, gt=0)
    #: the breaker's readiness probe (after each cooldown) must answer within this
    probe_timeout_s: float = Field(default=0.5, gt=0)
    #: retries (refused, reset, cut off) as a share of requests over the window; 0 turns retries off
    retry_budget: float = Field(default=0.2, ge=0.0, le=1.0)
    retry_budget_window_s: float = Field(default=10.0, gt=0)
    #: retries always allowed per window on top of the share (a quiet gateway can still retry)
    retry_budget_min: int = Field(default=10, ge=0)
    shadow_max_concurrency: int = Field(default=4, ge=0)
    stats_window_s: float = Field(default=60.0, gt=0)

    api_key: SecretStr | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.api_key is not None and not self.api_key.get_secret_value():
            raise ValueError(f"{env_name('api_key')}: empty; unset it to disable the API key")
        if self.grpc_port == self.port:
            raise ValueError(f"{env_name('grpc_port')}: {self.grpc_port} is also {env_name('port')}; give gRPC its own")
        for model, names in (self.backends or {}).items():
            if not names:
                raise ValueError(f"{env_name('backends')}: model {model!r} has no backend")
            triton = sorted(set(names) & set(TRITON_BACKENDS))
            if triton and self.triton_url is None:
                raise ValueError(
                    f"{env_name('backends')}: model {model!r} names {triton}, but {env_name('triton_url')} is not set"
                )
        for model, policy in self.policies.items():
            if self.backends is not None and model not in self.backends:
                raise ValueError(f"{env_name('policies')}: model {model!r} is not in {env_name('backends')}")
            serving = set(self.serving(model))
            if policy.hedge is not None and len(policy.named_backends() or serving) < 2:
                raise ValueError(f'{env_name("policies")}: model {model!r}: "hedge" needs two backends in its policy')
            missing = policy.named_backends() - serving
            if missing:
                raise ValueError(
                    f"{env_name('policies')}: model {model!r} names {sorted(missing)}, "
                    f"which {env_name('backends')} does not assign to it (serving: {sorted(serving)})"
                )
        return self

    def serving(self, model: str) -> list[BackendName]:
        """The backends that serve ``model``, in configured order."""
        if self.backends is None:
            return [b for b in BACKEND_NAMES if self.triton_url is not None or b not in TRITON_BACKENDS]
        return list(self.backends.get(model, []))

    def policy_for(self, model: str) -> PolicyConfig:
        """The configured policy, or ``fixed`` to the model's first backend (``torch`` by default)."""
        return self.policies.get(model) or PolicyConfig(policy="fixed", backend=self.serving(model)[0])


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and ``overrides``); :class:`SettingsError` names the variable."""
    return load(Settings, **overrides)


def check_against_models(settings: Settings, models: Iterable[str]) -> None:
    """Every model named in the settings exists in the manifest."""
    known = set(models)
    for field in ("backends", "policies"):
        named: dict[str, object] = getattr(settings, field) or {}
        unknown = sorted(set(named) - known)
        if unknown:
            raise SettingsError(f"{env_name(field)}: unknown model(s) {unknown}; the manifest has {sorted(known)}")
