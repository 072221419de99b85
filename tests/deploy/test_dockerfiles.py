"""Every Dockerfile in the repository: pinned base, non-root user, healthcheck, COPY sources that exist."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from tests.deploy import compose, dockerfile
from tests.deploy.compose import CPU, DEFAULT, REPO

#: Images that run once and exit: they carry HEALTHCHECK NONE instead of a probe.
ONE_SHOT = {"deploy/export.Dockerfile"}
_SKIP_DIRS = {".git", ".venv", "artifacts", "reports", "logs", ".run", "node_modules", ".mypy_cache"}


def _dockerfiles() -> list[Path]:
    found = []
    for path in REPO.rglob("*"):
        if _SKIP_DIRS & set(path.relative_to(REPO).parts):
            continue
        if path.is_file() and (path.name == "Dockerfile" or path.name.endswith(".Dockerfile")):
            found.append(path)
    return sorted(found)


def _contexts() -> dict[Path, Path]:
    """Dockerfile -> build context, from the compose file (the repository root for any other)."""
    out: dict[Path, Path] = {}
    for service in compose.merged(DEFAULT)["services"].values():
        build = service.get("build")
        if build:
            context = Path(build["context"])
            out[(context / build.get("dockerfile", "Dockerfile")).resolve()] = context.resolve()
    return out


DOCKERFILES = _dockerfiles()
IDS = [str(p.relative_to(REPO)) for p in DOCKERFILES]


def test_the_expected_dockerfiles_are_found() -> None:
    assert {
        "gateway/Dockerfile",
        "services/torch_api/Dockerfile",
        "services/tf_api/Dockerfile",
        "deploy/export.Dockerfile",
        "deploy/locust.Dockerfile",
    } <= set(IDS)


def test_every_dockerfile_is_built_by_compose() -> None:
    assert set(_contexts()) == set(DOCKERFILES)


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_base_image_is_pinned(path: Path) -> None:
    images = dockerfile.base_images(dockerfile.parse(path))
    assert images, f"{path}: no FROM"
    for image in images:
        assert dockerfile.is_pinned(image), f"{path}: FROM {image} is not pinned to a tag"


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_runs_as_a_non_root_user(path: Path) -> None:
    instructions = dockerfile.parse(path)
    user = dockerfile.final_user(instructions)
    assert user not in (None, "root", "0"), f"{path}: last USER is {user!r}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_has_a_healthcheck(path: Path) -> None:
    checks = [ins.args for ins in dockerfile.parse(path) if ins.keyword == "HEALTHCHECK"]
    assert len(checks) == 1, f"{path}: {len(checks)} HEALTHCHECK instructions"
    if str(path.relative_to(REPO)) in ONE_SHOT:
        assert checks[0] == "NONE"
    else:
        assert "CMD" in checks[0].split(), f"{path}: HEALTHCHECK {checks[0]!r} runs nothing"


def _ignored(context: Path, relative: str) -> bool:
    patterns_file = context / ".dockerignore"
    if not patterns_file.exists():
        return False
    patterns = [p.strip() for p in patterns_file.read_text().splitlines() if p.strip() and not p.startswith("#")]
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) for pattern in patterns for prefix in prefixes)


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_copy_sources_exist_in_the_build_context(path: Path) -> None:
    context = _contexts().get(path.resolve(), REPO)
    sources = dockerfile.copy_sources(dockerfile.parse(path))
    assert sources, f"{path}: copies nothing"
    for source in sources:
        target = context / source
        assert target.exists(), f"{path}: COPY {source} is missing from the build context {context}"
        assert not _ignored(context, source.rstrip("/")), f"{path}: COPY {source} is excluded by .dockerignore"


def test_dockerignore_keeps_generated_data_out() -> None:
    patterns = (REPO / ".dockerignore").read_text().split()
    for name in (".git", ".venv", "artifacts", "reports", "logs", ".run"):
        assert name in patterns, f".dockerignore lacks {name}"
    for context in set(_contexts().values()) - {REPO}:
        assert not any((context / name).exists() for name in ("artifacts", ".venv", "reports")), context


def test_gateway_image_runs_the_native_launch_command() -> None:
    from stack.native import COMMANDS

    instructions = dockerfile.parse(REPO / "gateway" / "Dockerfile")
    entrypoints = [ins for ins in instructions if ins.keyword == "ENTRYPOINT"]
    (cmd,) = [ins for ins in instructions if ins.keyword == "CMD"]
    assert not entrypoints, "the gateway image's command is its CMD alone"
    assert cmd.args.startswith("["), "exec form, so SIGTERM reaches uvicorn"
    assert cmd.words() == ["python", "-m", "gateway"]
    assert cmd.words() == COMMANDS["gateway"]


def test_gateway_image_installs_the_locked_versions_and_no_framework() -> None:
    locked = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, _, version = line.partition("==")
            locked[name.lower().replace("_", "-")] = version
    wanted = [
        line
        for line in (REPO / "deploy" / "gateway.requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    names = set()
    for line in wanted:
        name, _, version = line.partition("==")
        name = name.split("[")[0].lower()
        names.add(name)
        assert locked.get(name) == version, f"{line} disagrees with requirements.lock ({locked.get(name)})"
    assert not names & {"torch", "tensorflow", "tensorflow-serving-api", "onnxruntime", "keras"}
    assert {"fastapi", "uvicorn", "aiohttp", "httpx", "hdrhistogram", "prometheus-client", "numpy"} <= names


def _norm(pin: str) -> str:
    return pin.lower().replace("_", "-")


def test_export_image_pins_match_the_project() -> None:
    text = (REPO / "deploy" / "export.Dockerfile").read_text()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    known = {_norm(p) for p in project} | {_norm(p) for p in (REPO / "requirements.lock").read_text().split()}
    pins = {_norm(pin) for pin in re.findall(r"\b([A-Za-z][\w.-]*==[\w.]+)", text)}
    assert {"torch==2.13.0", "tensorflow==2.21.0", "torch-model-archiver==0.12.0", "onnxscript==0.7.2"} <= pins
    for pin in pins:
        assert pin in known, f"{pin} is pinned neither in pyproject.toml nor in requirements.lock"


def test_cpu_override_builds_the_model_servers_from_cpu_images() -> None:
    services = compose.merged(CPU)["services"]
    for name in ("torch_api", "tf_api"):
        build = services[name]["build"]
        path = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
        images = dockerfile.base_images(dockerfile.parse(path), build.get("args", {}))
        assert images == [build["args"]["BASE_IMAGE"]], f"{name}: the CPU build still starts FROM {images}"
        assert "gpu" not in images[0]
