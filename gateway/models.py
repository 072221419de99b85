"""The models the gateway serves, read once from ``artifacts/manifest.json``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.common.artifacts import ArtifactError, load_manifest

from .config import SettingsError, env_name


@dataclass(frozen=True)
class ModelInfo:
    """One model's per-instance input and output shapes and its request limit."""

    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    max_batch: int
    input_dtype: str = "float32"
    description: str = ""

    def public(self) -> dict[str, object]:
        return {
            "input_shape": [None, *self.input_shape],
            "output_shape": [None, *self.output_shape],
            "input_dtype": self.input_dtype,
            "max_batch": self.max_batch,
            "description": self.description,
        }


def load_models(manifest_path: Path) -> dict[str, ModelInfo]:
    """Every model in the manifest; :class:`SettingsError` if it is missing or malformed."""
    try:
        data = load_manifest(manifest_path.parent)
        if manifest_path.name != "manifest.json":
            raise ArtifactError(f"{manifest_path}: the manifest must be named manifest.json")
        models = {}
        for name, entry in data["models"].items():
            models[name] = ModelInfo(
                name=name,
                input_shape=tuple(int(d) for d in entry["input"]["shape"][1:]),
                output_shape=tuple(int(d) for d in entry["output"]["shape"][1:]),
                max_batch=int(entry["max_batch"]),
                input_dtype=str(entry["input"].get("dtype", "float32")),
                description=str(entry.get("description", "")),
            )
    except ArtifactError as exc:
        raise SettingsError(f"{env_name('manifest')}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise SettingsError(f"{env_name('manifest')}: {manifest_path} is malformed ({exc!r})") from None
    if not models:
        raise SettingsError(f"{env_name('manifest')}: {manifest_path} lists no models")
    return models
