"""TF Serving's config files, read the way the binary reads them, for the compatible server.

Owns: writing ``models.config`` for the models in the manifest and parsing it
(``ModelServerConfig`` text proto, with the protos of ``tensorflow-serving-api``),
``batching.config`` and ``monitoring.config`` (see :mod:`services.tf_api.protos`),
resolving each ``base_path`` on this machine, choosing which version directories a
version policy loads, and writing the rewritten copy a local ``tensorflow_model_server``
binary needs. Imports no framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from services.tf_api.protos import BatchingParameters, MonitoringConfig

#: The prefix every base_path in models.config carries (the image's mount point).
DOCKER_MODEL_ROOT = "/models/"
HERE = Path(__file__).resolve().parent
DEFAULT_BATCHING_CONFIG = HERE / "batching.config"
DEFAULT_MONITORING_CONFIG = HERE / "monitoring.config"


class ConfigError(ValueError):
    """A config file is unreadable or says something the server cannot do; the message names the file."""


@dataclass(frozen=True)
class VersionPolicy:
    """``model_version_policy``: latest N (TF Serving's default, N=1), all, or specific versions."""

    kind: Literal["latest", "all", "specific"] = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def choose(self, available: list[int]) -> list[int]:
        """The versions to load out of the numeric version directories found on disk."""
        ordered = sorted(available, reverse=True)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[: self.num_versions]


@dataclass(frozen=True)
class ModelEntry:
    """One ``config { ... }`` of the model_config_list, its base_path resolved on this machine."""

    name: str
    base_path: Path
    policy: VersionPolicy
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchingConfig:
    """The BatchingParameters the compatible server honours (TF Serving's defaults).

    ``max_batch_size`` is the largest task (request) accepted; with
    ``enable_large_batch_splitting`` a batch runs at most ``max_execution_batch_size`` rows
    and larger tasks are split across batches, otherwise a batch runs at most
    ``max_batch_size`` rows.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = 4
    max_enqueued_batches: int = 10
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int = 10

    @property
    def execution_limit(self) -> int:
        """Most rows one TF call runs."""
        return self.max_execution_batch_size if self.enable_large_batch_splitting else self.max_batch_size


@dataclass(frozen=True)
class MonitoringSettings:
    """``prometheus_config``: whether metrics are exposed and on which REST path."""

    enable: bool = False
    path: str = "/monitoring/prometheus/metrics"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None


def resolve_base_path(base_path: str, artifacts_root: Path) -> Path:
    """``/models/<m>`` or a relative path -> ``<artifacts>/tf/<m>``; other absolute paths stay as they are."""
    tf_root = artifacts_root / "tf"
    if base_path.startswith(DOCKER_MODEL_ROOT):
        return tf_root / base_path[len(DOCKER_MODEL_ROOT) :]
    path = Path(base_path)
    return path if path.is_absolute() else tf_root / path


def _policy(config: model_server_config_pb2.ModelConfig) -> VersionPolicy:
    policy = config.model_version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return VersionPolicy("all")
    if which == "specific":
        return VersionPolicy("specific", versions=tuple(int(v) for v in policy.specific.versions))
    if which == "latest":
        return VersionPolicy("latest", num_versions=max(1, int(policy.latest.num_versions)))
    return VersionPolicy()


def render_models_config(models: list[str]) -> str:
    """The model_config_list for ``models``: base_path ``/models/<name>`` (the image's mount), newest version only.

    Written by the build into ``artifacts/tf/models.config``, which TF Serving reads as
    ``/models/models.config`` and the compatible server reads natively.
    """
    parsed = model_server_config_pb2.ModelServerConfig()
    for name in models:
        config = parsed.model_config_list.config.add()
        config.name = name
        config.base_path = DOCKER_MODEL_ROOT + name
        config.model_platform = "tensorflow"
        config.model_version_policy.latest.num_versions = 1  # a rollout drops a new N/ beside the old one
        config.version_labels["stable"] = 1  # labels may only name versions the policy loads
    header = "# TF Serving model_config_list, written by `make artifacts` / `duoserve models add` from the manifest.\n"
    return header + str(text_format.MessageToString(parsed))


def load_models(path: Path, artifacts_root: Path) -> list[ModelEntry]:
    """Parse a models.config; :class:`ConfigError` for bad syntax, platform or duplicate names."""
    try:
        parsed = text_format.Parse(_read(path), model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as exc:
        raise ConfigError(f"{path}: not a ModelServerConfig text proto: {exc}") from None
    if parsed.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"{path}: needs a model_config_list")
    entries: list[ModelEntry] = []
    for config in parsed.model_config_list.config:
        if not config.name or not config.base_path:
            raise ConfigError(f"{path}: every config needs a name and a base_path")
        if config.model_platform not in ("", "tensorflow"):
            raise ConfigError(f"{path}: model {config.name}: platform {config.model_platform!r} is not 'tensorflow'")
        if any(e.name == config.name for e in entries):
            raise ConfigError(f"{path}: model {config.name} is configured twice")
        entries.append(
            ModelEntry(
                name=config.name,
                base_path=resolve_base_path(config.base_path, artifacts_root),
                policy=_policy(config),
                labels={str(k): int(v) for k, v in config.version_labels.items()},
            )
        )
    return entries


def _int(message: object, name: str, default: int) -> int:
    return int(getattr(message, name).value) if message.HasField(name) else default  # type: ignore[attr-defined]


def load_batching(path: Path) -> BatchingConfig:
    """Parse a batching parameters file; unset fields keep TF Serving's defaults."""
    try:
        parsed = text_format.Parse(_read(path), BatchingParameters())
    except text_format.ParseError as exc:
        raise ConfigError(f"{path}: not a BatchingParameters text proto: {exc}") from None
    defaults = BatchingConfig()
    config = BatchingConfig(
        max_batch_size=_int(parsed, "max_batch_size", defaults.max_batch_size),
        batch_timeout_micros=_int(parsed, "batch_timeout_micros", defaults.batch_timeout_micros),
        num_batch_threads=_int(parsed, "num_batch_threads", defaults.num_batch_threads),
        max_enqueued_batches=_int(parsed, "max_enqueued_batches", defaults.max_enqueued_batches),
        enable_large_batch_splitting=bool(parsed.enable_large_batch_splitting.value),
        max_execution_batch_size=_int(parsed, "max_execution_batch_size", defaults.max_execution_batch_size),
    )
    for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches", "max_execution_batch_size"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{path}: {name} must be at least 1")
    if config.batch_timeout_micros < 0:
        raise ConfigError(f"{path}: batch_timeout_micros must not be negative")
    if config.enable_large_batch_splitting and config.max_execution_batch_size > config.max_batch_size:
        raise ConfigError(f"{path}: max_execution_batch_size must not exceed max_batch_size (TF Serving's rule)")
    return config


def check_batch_limits(config: BatchingConfig, path: Path, max_batches: dict[str, int]) -> None:
    """:class:`ConfigError` naming the model whose manifest max batch the batching config would refuse."""
    for model, max_batch in max_batches.items():
        if max_batch > config.max_batch_size:
            raise ConfigError(
                f"{path}: max_batch_size {config.max_batch_size} refuses requests of model {model}, whose manifest "
                f"allows {max_batch} instances; raise max_batch_size (with enable_large_batch_splitting) to at least "
                f"{max_batch}"
            )


def load_monitoring(path: Path) -> MonitoringSettings:
    """Parse a monitoring config file."""
    try:
        parsed = text_format.Parse(_read(path), MonitoringConfig())
    except text_format.ParseError as exc:
        raise ConfigError(f"{path}: not a MonitoringConfig text proto: {exc}") from None
    prometheus = parsed.prometheus_config
    return MonitoringSettings(enable=bool(prometheus.enable), path=prometheus.path or MonitoringSettings.path)


def write_native_config(source: Path, artifacts_root: Path, target: Path) -> Path:
    """Write ``source`` with every base_path resolved on this machine (for a local binary)."""
    parsed = text_format.Parse(_read(source), model_server_config_pb2.ModelServerConfig())
    for config in parsed.model_config_list.config:
        config.base_path = str(resolve_base_path(config.base_path, artifacts_root).resolve())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text_format.MessageToString(parsed))
    return target
