"""docker-compose.yml, its GPU and CPU layers: validated by docker-compose 1.29 and checked for structure."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import compose
from tests.deploy.compose import BASE, CPU, DEFAULT, PROFILES, REPO

MODEL_SERVERS = ("torch_api", "triton_api", "tf_api")
ONE_SHOT = ("export",)
#: service -> container ports it may publish, and the profile it must belong to (None: always on)
PUBLISHED = {"gateway": ([8000, 8001], None), "grafana": ([3000], "monitoring")}
SECRETS = ("GATEWAY_API_KEY", "GRAFANA_ADMIN_PASSWORD")
LOCUST_UI = ("docker-compose.yml", "docker-compose.override.yml", "docker-compose.locust-ui.yml")


_port = compose.port_of


def _services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = config["services"]
    return services


def _gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    devices: list[dict[str, Any]] = (
        service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    )
    return devices


_FILES = {"base": BASE, "default": DEFAULT, "cpu": CPU, "auto": None}
_CASES = [(f, ()) for f in _FILES] + [(f, PROFILES) for f in _FILES] + [("default", (p,)) for p in PROFILES]


@pytest.mark.parametrize(
    ("files", "profiles"), [(_FILES[f], p) for f, p in _CASES], ids=[f"{f}-{'+'.join(p) or 'none'}" for f, p in _CASES]
)
def test_config_accepts(files: tuple[str, ...] | None, profiles: tuple[str, ...]) -> None:
    flags = [arg for p in profiles for arg in ("--profile", p)]
    result = compose.run(files, *flags, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_required_secrets_are_refused_when_missing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose.run(BASE, "config", "-q", env_file=empty)
    assert result.returncode != 0
    assert "GATEWAY_API_KEY" in result.stderr


def test_secrets_have_no_literal_default() -> None:
    text = "\n".join((REPO / name).read_text() for name in {*DEFAULT, *CPU})
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, f"{name} is not used"
        for tail in uses:
            assert tail.startswith(":?"), f"${{{name}{tail}}} must be ${{{name}:?message}}"
            assert len(tail) > 2, f"${{{name}{tail}}} needs a message"
    # and no secret-looking variable is set to a literal anywhere
    for service in _services(compose.raw("docker-compose.yml")).values():
        env = service.get("environment", {})
        for key, value in env.items():
            if re.search(r"KEY|PASSWORD|TOKEN|SECRET", key) and not key.endswith("_FILE"):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), f"{key}={value!r} is a literal secret"


@pytest.mark.parametrize("files", [DEFAULT, CPU], ids=["default", "cpu"])
def test_only_the_gateway_and_profile_uis_publish_ports(files: tuple[str, ...]) -> None:
    services = _services(compose.merged(files))
    for name, service in services.items():
        ports = service.get("ports", [])
        if name not in PUBLISHED:
            assert not ports, f"{name} publishes {ports}"
            continue
        target, profile = PUBLISHED[name]
        assert [_port(p)[2] for p in ports] == target, f"{name}: {ports}"
        assert service.get("profiles", [None])[0] == profile, f"{name} must be in profile {profile}"
    # docker-compose 1.29 lists every service in `config`; those with no profile start by default
    always = {name: s for name, s in services.items() if not s.get("profiles")}
    assert sorted(name for name, service in always.items() if service.get("ports")) == ["gateway"]


def test_gateway_ports_are_published_on_the_configured_host_ports() -> None:
    http, grpc = _services(compose.merged(DEFAULT))["gateway"]["ports"]
    assert _port(http) == ("127.0.0.1", 8000, 8000)
    assert _port(grpc) == ("127.0.0.1", 8001, 8001)
    env = _services(compose.merged(DEFAULT))["gateway"]["environment"]
    assert (env["GATEWAY_PORT"], env["GATEWAY_GRPC_PORT"]) == ("8000", "8001")


def test_model_servers_reserve_a_gpu_by_default() -> None:
    for config in (compose.merged(DEFAULT), compose.merged(None)):
        services = _services(config)
        for name in MODEL_SERVERS:
            (device,) = _gpu_devices(services[name])
            assert device["driver"] == "nvidia"
            assert device["capabilities"] == ["gpu"]
            assert device["device_ids"] == ["0"]
        others = [n for n, s in services.items() if n not in MODEL_SERVERS and _gpu_devices(s)]
        assert not others, f"only the model servers take GPUs, not {others}"


def test_gpu_ids_come_from_variables() -> None:
    override = _services(compose.raw("docker-compose.override.yml"))
    assert override["torch_api"]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == [
        "${TORCH_GPU_ID:-0}"
    ]
    assert override["tf_api"]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["${TF_GPU_ID:-0}"]
    triton = override["triton_api"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert triton["device_ids"] == ["${TRITON_GPU_ID:-0}"]


def test_cpu_override_has_no_reservations_and_cpu_images() -> None:
    services = _services(compose.merged(CPU))
    for name, service in services.items():
        assert "deploy" not in service or not _gpu_devices(service), f"{name} still reserves a device"
    assert services["torch_api"]["build"]["args"]["BASE_IMAGE"] == "pytorch/torchserve:0.12.0-cpu"
    assert services["tf_api"]["build"]["args"]["BASE_IMAGE"] == "tensorflow/serving:2.19.0"
    # Triton's one image runs on either; its instances move to the CPU
    assert services["triton_api"]["environment"]["TRITON_DEVICE"] == "cpu"


def test_tf_serving_shares_the_gpu() -> None:
    tf = _services(compose.merged(DEFAULT))["tf_api"]
    assert tf["environment"]["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert tf["command"] == ["--per_process_gpu_memory_fraction=0.4"]


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in _services(compose.merged(DEFAULT)).items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name} is one-shot"
            assert "healthcheck" not in service
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: {check}"
        assert "curl" not in " ".join(check["test"]) or name == "tf_api", f"{name}: no curl in that image"


def test_every_depends_on_has_a_condition() -> None:
    services = _services(compose.merged(DEFAULT))
    for name, service in services.items():
        for dep, spec in service.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            expected = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert spec.get("condition") == expected, f"{name} -> {dep}: {spec}"
    for name in MODEL_SERVERS:
        assert services[name]["depends_on"] == {"export": {"condition": "service_completed_successfully"}}
    assert set(services["gateway"]["depends_on"]) == set(MODEL_SERVERS)


@pytest.mark.parametrize("files", [DEFAULT, CPU], ids=["default", "cpu"])
def test_images_are_pinned(files: tuple[str, ...]) -> None:
    for name, service in _services(compose.merged(files)).items():
        image = service.get("image")
        assert image, f"{name} has no image name"
        repo, _, tag = image.rpartition(":")
        assert repo, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag"
        assert tag not in ("", "latest"), f"{name}: {image} is not pinned"


def test_volumes_wire_the_artifacts_and_the_key() -> None:
    services = _services(compose.merged(DEFAULT))

    def mounts(name: str) -> dict[str, tuple[str, bool]]:
        # 1.29 prints short syntax: SOURCE:TARGET:MODE
        parts = [str(v).split(":") for v in services[name]["volumes"]]
        return {target: (source, mode == "ro") for source, target, mode in parts}

    assert mounts("export") == {"/artifacts": ("artifacts", False), "/artifacts/tf": ("tf-models", False)}
    assert mounts("torch_api")["/models"] == ("artifacts", True)
    assert mounts("torch_api")["/home/model-server/keys"] == ("torch-keys", False)
    assert mounts("tf_api") == {"/models": ("tf-models", True)}
    # Triton reads the same artifacts as TorchServe and writes its repository inside the container
    assert mounts("triton_api") == {"/artifacts": ("artifacts", True)}
    assert services["triton_api"]["environment"]["TRITON_API_ARTIFACTS"] == "/artifacts"
    assert mounts("gateway") == {"/artifacts": ("artifacts", True), "/keys": ("torch-keys", True)}
    env = services["gateway"]["environment"]
    assert env["GATEWAY_TORCH_KEY_FILE"] == "/keys/key_file.json"
    assert env["GATEWAY_MANIFEST"] == "/artifacts/manifest.json"
    assert env["GATEWAY_TORCH_URL"] == "http://torch_api:8080"
    assert env["GATEWAY_TF_URL"] == "http://tf_api:8501"
    assert env["GATEWAY_TRITON_URL"] == "http://triton_api:8000"
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    assert env["GATEWAY_API_KEY"] == "ci-dummy-gateway-key"


def test_locust_targets_the_gateway_and_the_servers_inside() -> None:
    services = _services(compose.merged(DEFAULT))
    master, worker = services["locust-master"], services["locust-worker"]
    assert master["command"][:3] == ["-f", "/app/loadtests/locustfile.py", "--master"]
    assert worker["command"][-3:] == ["--worker", "--master-host", "locust-master"]
    for service in (master, worker):
        env = service["environment"]
        assert env["LOADTEST_GATEWAY_URL"] == "http://gateway:8000"
        assert env["LOADTEST_TORCH_URL"] == "http://torch_api:8080"
        assert env["LOADTEST_TF_URL"] == "http://tf_api:8501"
        assert service["profiles"] == ["loadtest"]


@pytest.mark.parametrize("files", [DEFAULT, CPU, LOCUST_UI], ids=["default", "cpu", "locust-ui"])
def test_every_published_port_binds_to_loopback_by_default(files: tuple[str, ...]) -> None:
    published = {
        name: [_port(p) for p in service.get("ports", [])] for name, service in _services(compose.merged(files)).items()
    }
    found = [(name, host) for name, ports in published.items() for host, _, _ in ports]
    assert found
    assert {host for _, host in found} == {"127.0.0.1"}, found


def test_one_variable_opens_every_port(tmp_path: Path) -> None:
    env = tmp_path / "open.env"
    env.write_text((REPO / "deploy" / "ci.env").read_text() + "DUOSERVE_BIND=0.0.0.0\n")
    flags = ["--profile", "loadtest", "--profile", "monitoring"]
    result = compose.run(LOCUST_UI, *flags, "config", env_file=env)
    assert result.returncode == 0, result.stderr
    services = _services(yaml.safe_load(result.stdout))
    hosts = {name: {_port(p)[0] for p in s.get("ports", [])} for name, s in services.items() if s.get("ports")}
    assert hosts == {"gateway": {"0.0.0.0"}, "grafana": {"0.0.0.0"}, "locust-master": {"0.0.0.0"}}


def test_the_locust_ui_is_internal_unless_published_behind_a_login(tmp_path: Path) -> None:
    master = _services(compose.merged(DEFAULT))["locust-master"]
    assert "ports" not in master
    # inside its container on loopback only: not even the compose network reaches it
    assert master["command"][-2:] == ["--web-host", "127.0.0.1"]
    assert "--web-login" not in master["command"]
    published = _services(compose.merged(LOCUST_UI))["locust-master"]
    assert [_port(p) for p in published["ports"]] == [("127.0.0.1", 8089, 8089)]
    assert published["command"][-3:] == ["--web-host", "0.0.0.0", "--web-login"]
    assert published["environment"]["LOCUST_WEB_PASSWORD"] == "ci-dummy-locust-password"
    # the workers never receive the UI's password
    assert "LOCUST_WEB_PASSWORD" not in _services(compose.merged(LOCUST_UI))["locust-worker"]["environment"]
    raw = compose.raw("docker-compose.locust-ui.yml")["services"]["locust-master"]["environment"]
    assert re.fullmatch(r"\$\{LOCUST_WEB_PASSWORD:\?[^}]+\}", raw["LOCUST_WEB_PASSWORD"])
    env = tmp_path / "no-password.env"
    env.write_text((REPO / "deploy" / "ci.env").read_text().replace("LOCUST_WEB_PASSWORD=", "UNUSED="))
    refused = compose.run(LOCUST_UI, "--profile", "loadtest", "config", "-q", env_file=env)
    assert refused.returncode != 0
    assert "LOCUST_WEB_PASSWORD" in refused.stderr


def test_triton_serves_the_same_repository_on_the_image_backends() -> None:
    triton = _services(compose.merged(DEFAULT))["triton_api"]
    assert triton["build"]["dockerfile"] == "services/triton_api/Dockerfile"
    assert "ports" not in triton
    assert sorted(str(p) for p in triton["expose"]) == ["8000", "8002"]
    dockerfile = (REPO / "services" / "triton_api" / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=nvcr\.io/nvidia/tritonserver:24\.10-py3$", dockerfile, re.M)
    entrypoint = (REPO / "services" / "triton_api" / "entrypoint.sh").read_text()
    assert "-m services.triton_api repository --out /run/duoserve/repository --target image" in entrypoint
    assert "--model-control-mode=none" in entrypoint
