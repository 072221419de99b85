"""A small kustomize renderer for duoserve's manifests: what ``kubectl kustomize`` does with them.

It supports exactly the features ``deploy/k8s`` uses: ``resources`` (files and
directories holding a ``kustomization.yaml``; ``bases``, kustomize 2's name for a
directory resource), ``namespace``, ``patches`` given by ``path`` or
``patchesStrategicMerge`` file names (strategic merge: maps merge, lists of named items such as containers merge by
``name``, other lists are replaced) and ``images`` (``newName``/``newTag``). Anything
else in a kustomization is refused, so the renderer cannot silently drift from kustomize;
the tests compare its output with ``kubectl kustomize`` where kubectl is installed.
The overlays use ``bases`` and ``patchesStrategicMerge``, which every kustomize reads
(newer ones warn that they are deprecated): Debian 12's kubectl (``kubernetes-client``
1.20, kustomize 2.0.3), which ``.ci/run`` installs, reads no other form of them.

Usage: ``python deploy/kustomize.py deploy/k8s/overlays/gpu`` prints the manifests.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]
SUPPORTED = {"apiVersion", "kind", "resources", "bases", "namespace", "patches", "patchesStrategicMerge", "images"}
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}
_MERGE_KEYS = ("name", "containerPort", "mountPath")


class KustomizeError(ValueError):
    """A kustomization uses something this renderer does not support, or names a missing file."""


def _load_all(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _key(resource: Resource) -> tuple[str, str]:
    return resource["kind"], resource["metadata"]["name"]


def _merge_list(base: list[Any], patch: list[Any]) -> list[Any]:
    if not all(isinstance(i, dict) for i in base + patch):
        return copy.deepcopy(patch)
    for key in _MERGE_KEYS:
        if all(key in i for i in base + patch):
            out = [copy.deepcopy(i) for i in base]
            for item in patch:
                match = next((o for o in out if o[key] == item[key]), None)
                if match is None:
                    out.append(copy.deepcopy(item))
                else:
                    out[out.index(match)] = merge(match, item)
            return out
    return copy.deepcopy(patch)


def merge(base: Any, patch: Any) -> Any:
    """Strategic-merge ``patch`` into ``base`` (a copy; ``None`` in the patch deletes a key)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list):
        return _merge_list(base, patch)
    return copy.deepcopy(patch)


def _set_image(resource: Resource, images: list[dict[str, str]]) -> None:
    spec = resource.get("spec", {}).get("template", {}).get("spec", {})
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        name, _, tag = container["image"].partition(":")
        for rule in images:
            if rule["name"] == name:
                container["image"] = f"{rule.get('newName', name)}:{rule.get('newTag', tag)}"


def build(directory: Path) -> list[Resource]:
    """The resources a kustomization directory renders to."""
    file = directory / "kustomization.yaml"
    if not file.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    spec: dict[str, Any] = yaml.safe_load(file.read_text())
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{file}: unsupported fields {sorted(unknown)}")
    resources: list[Resource] = []
    for entry in [*spec.get("bases", []), *spec.get("resources", [])]:
        path = (directory / entry).resolve()
        if path.is_dir():
            resources += build(path)
        elif path.is_file():
            resources += _load_all(path)
        else:
            raise KustomizeError(f"{file}: resource {entry} does not exist")
    by_key = {_key(r): i for i, r in enumerate(resources)}
    if len(by_key) != len(resources):
        raise KustomizeError(f"{file}: a resource is listed twice")
    for patch_entry in [*spec.get("patches", []), *({"path": p} for p in spec.get("patchesStrategicMerge", []))]:
        if not isinstance(patch_entry, dict) or set(patch_entry) != {"path"}:
            raise KustomizeError(f"{file}: only patches with a path are supported, not {patch_entry}")
        for patch in _load_all(directory / patch_entry["path"]):
            index = by_key.get(_key(patch))
            if index is None:
                raise KustomizeError(f"{file}: patch target {_key(patch)} not found")
            resources[index] = merge(resources[index], patch)
    for resource in resources:
        if "namespace" in spec and resource["kind"] not in _CLUSTER_SCOPED:
            resource["metadata"]["namespace"] = spec["namespace"]
        _set_image(resource, spec.get("images", []))
    return resources


def main(argv: list[str]) -> int:
    """Print the rendered manifests of the directory in ``argv[1]``."""
    if len(argv) != 2:
        print("usage: python deploy/kustomize.py DIRECTORY", file=sys.stderr)
        return 2
    print(yaml.safe_dump_all(build(Path(argv[1])), sort_keys=True), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
