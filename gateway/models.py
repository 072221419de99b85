"""The models the gateway serves: the manifest's entries, read once at start-up."""

from __future__ import annotations

from pathlib import Path

from contract.artifacts import MANIFEST_NAME, ArtifactError
from contract.manifest import Manifest, ModelEntry

from .config import SettingsError, env_name


def load_models(manifest_path: Path) -> dict[str, ModelEntry]:
    """Every model in the manifest; :class:`SettingsError` if it is missing, malformed or empty."""
    if manifest_path.name != MANIFEST_NAME:
        raise SettingsError(f"{env_name('manifest')}: {manifest_path}: the manifest must be named {MANIFEST_NAME}")
    try:
        manifest = Manifest.read(manifest_path)
    except ArtifactError as exc:
        raise SettingsError(f"{env_name('manifest')}: {exc}") from None
    if not manifest.models:
        raise SettingsError(f"{env_name('manifest')}: {manifest_path} lists no models")
    return dict(manifest.models)
