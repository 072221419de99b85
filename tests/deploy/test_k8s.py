"""deploy/k8s: both overlays render (deploy/kustomize.py), validate against a pinned Kubernetes, and wire up."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.compose import REPO

#: The Kubernetes API the manifests are validated against (schemas ship with kubernetes-validate).
KUBERNETES_VERSION = "1.33.0"
OVERLAYS = ("gpu", "cpu")
SERVERS = {
    "torch-api": ("torchserve", [8080]),
    "triton-api": ("triton", [8000]),
    "tf-api": ("tf-serving", [8500, 8501]),
}
GATEWAY_LABELS = {"app.kubernetes.io/name": "gateway"}


def _renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kustomize", REPO / "deploy" / "kustomize.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


KUSTOMIZE = _renderer()
RENDERED: dict[str, list[dict[str, Any]]] = {
    o: KUSTOMIZE.build(REPO / "deploy" / "k8s" / "overlays" / o) for o in OVERLAYS
}


def _get(overlay: str, kind: str, name: str) -> dict[str, Any]:
    (found,) = [r for r in RENDERED[overlay] if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def _container(overlay: str, deployment: str, name: str) -> dict[str, Any]:
    containers = _get(overlay, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    (found,) = [c for c in containers if c["name"] == name]
    return found


def _key(resource: dict[str, Any]) -> tuple[str, str]:
    return resource["kind"], resource["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_resource_validates_against_the_pinned_kubernetes(overlay: str) -> None:
    assert len(RENDERED[overlay]) == 19
    for resource in RENDERED[overlay]:
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{_key(resource)}: {exc.message} at {'/'.join(map(str, exc.path))}")


def test_validation_catches_a_broken_manifest() -> None:
    broken = _get("gpu", "Deployment", "gateway")
    broken = KUSTOMIZE.merge(broken, {"spec": {"replicas": "two", "selectr": {}}})
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_agrees_with_kubectl_kustomize(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the cross-check of deploy/kustomize.py against kustomize is skipped")
    out = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy" / "k8s" / "overlays" / overlay)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    theirs = sorted((d for d in yaml.safe_load_all(out.stdout) if d), key=_key)
    assert sorted(RENDERED[overlay], key=_key) == theirs


def test_gpu_overlay_puts_each_server_on_one_gpu_node() -> None:
    for deployment, (container, _) in SERVERS.items():
        pod = _get("gpu", "Deployment", deployment)["spec"]["template"]["spec"]
        assert _container("gpu", deployment, container)["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    gpu_users = [
        _key(r)
        for r in RENDERED["gpu"]
        if r["kind"] == "Deployment"
        and any("nvidia.com/gpu" in str(c.get("resources")) for c in r["spec"]["template"]["spec"]["containers"])
    ]
    assert sorted(gpu_users) == [("Deployment", "tf-api"), ("Deployment", "torch-api"), ("Deployment", "triton-api")]


def test_cpu_overlay_has_no_gpu_and_uses_the_cpu_images() -> None:
    assert "nvidia.com/gpu" not in yaml.safe_dump_all(RENDERED["cpu"])
    assert _container("cpu", "torch-api", "torchserve")["image"] == "duoserve/torch_api:0.1.0-cpu"
    assert _container("cpu", "tf-api", "tf-serving")["image"] == "duoserve/tf_api:0.1.0-cpu"
    assert _container("gpu", "torch-api", "torchserve")["image"] == "duoserve/torch_api:0.1.0"
    # Triton's one image runs on either; on CPU nodes its instances move to the CPU
    triton = _container("cpu", "triton-api", "triton")
    assert triton["image"] == "duoserve/triton_api:0.1.0"
    assert {"name": "TRITON_DEVICE", "value": "cpu"} in triton["env"]
    assert {"name": "TRITON_DEVICE", "value": "gpu"} in _container("gpu", "triton-api", "triton")["env"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_long_running_container_has_probes(overlay: str) -> None:
    for resource in RENDERED[overlay]:
        if resource["kind"] != "Deployment":
            continue
        for container in resource["spec"]["template"]["spec"]["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                assert probe in container, f"{_key(resource)} {container['name']} lacks {probe}"
    assert _container(overlay, "gateway", "gateway")["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert _container(overlay, "gateway", "gateway")["livenessProbe"]["httpGet"]["path"] == "/health/live"
    torch_probe = _container(overlay, "torch-api", "torchserve")["readinessProbe"]["exec"]["command"]
    assert torch_probe[:2] == ["python", "/home/model-server/healthcheck.py"]
    assert _container(overlay, "tf-api", "tf-serving")["readinessProbe"]["httpGet"]["port"] == "rest"
    assert _container(overlay, "triton-api", "triton")["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"


def test_network_policies_let_only_gateway_pods_reach_the_serving_ports() -> None:
    gateway_pod_labels = _get("gpu", "Deployment", "gateway")["spec"]["template"]["metadata"]["labels"]
    policies = [r for r in RENDERED["gpu"] if r["kind"] == "NetworkPolicy"]
    for deployment, (_, ports) in SERVERS.items():
        pod_labels = _get("gpu", "Deployment", deployment)["spec"]["template"]["metadata"]["labels"]
        (policy,) = [p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()]
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        serving = [rule for rule in policy["spec"]["ingress"] if {p["port"] for p in rule["ports"]} & set(ports)]
        assert len(serving) == 1, "one rule opens the serving ports"
        (peer,) = serving[0]["from"]
        assert set(peer) == {"podSelector"}, "pods in this namespace only"
        assert peer["podSelector"]["matchLabels"] == GATEWAY_LABELS
        assert GATEWAY_LABELS.items() <= gateway_pod_labels.items()
        assert sorted(p["port"] for p in serving[0]["ports"]) == ports
        # nothing else selects the gateway's label, and no rule is open to everyone
        for rule in policy["spec"]["ingress"]:
            assert rule.get("from"), "a rule without `from` admits every pod"
    locust_labels = _get("gpu", "Deployment", "locust-worker")["spec"]["template"]["metadata"]["labels"]
    assert not GATEWAY_LABELS.items() <= locust_labels.items()


def test_services_select_their_pods() -> None:
    for service in (r for r in RENDERED["gpu"] if r["kind"] == "Service"):
        selector = service["spec"]["selector"]
        matched = [
            _key(d)
            for d in RENDERED["gpu"]
            if d["kind"] == "Deployment" and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matched) == 1, f"{_key(service)} selects {matched}"


def test_hpa_scales_the_gateway_on_cpu() -> None:
    hpa = _get("gpu", "HorizontalPodAutoscaler", "gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert 1 < hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    # utilization needs a CPU request on the target's containers
    assert _container("gpu", "gateway", "gateway")["resources"]["requests"]["cpu"]


def test_artifacts_and_key_volumes_are_shared_as_in_compose() -> None:
    def mounts(deployment: str, container: str) -> dict[str, tuple[str, str | None]]:
        pod = _get("gpu", "Deployment", deployment)["spec"]["template"]["spec"]
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
        found = _container("gpu", deployment, container)["volumeMounts"]
        return {m["mountPath"]: (claims[m["name"]], m.get("subPath")) for m in found}

    assert mounts("torch-api", "torchserve") == {
        "/models": ("artifacts", None),
        "/home/model-server/keys": ("torch-keys", None),
    }
    assert mounts("tf-api", "tf-serving") == {"/models": ("artifacts", "tf")}
    assert mounts("gateway", "gateway") == {"/artifacts": ("artifacts", None), "/keys": ("torch-keys", None)}
    triton_pod = _get("gpu", "Deployment", "triton-api")["spec"]["template"]["spec"]
    assert {"name": "artifacts", "persistentVolumeClaim": {"claimName": "artifacts", "readOnly": True}} in triton_pod[
        "volumes"
    ]
    gateway_env = {e["name"]: e.get("value") for e in _container("gpu", "gateway", "gateway")["env"]}
    assert gateway_env["GATEWAY_TRITON_URL"] == "http://triton-api:8000"
    job = _get("gpu", "Job", "export")["spec"]["template"]["spec"]
    assert job["containers"][0]["volumeMounts"] == [{"name": "artifacts", "mountPath": "/artifacts"}]
    # the gateway reads the 0600 key file, so it runs as TorchServe's uid
    gateway_uid = _get("gpu", "Deployment", "gateway")["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    torch_uid = _get("gpu", "Deployment", "torch-api")["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert gateway_uid == torch_uid
    for claim in ("artifacts", "torch-keys"):
        assert _get("gpu", "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_as_non_root_with_pinned_images(overlay: str) -> None:
    for resource in RENDERED[overlay]:
        template = resource.get("spec", {}).get("template")
        if not template:
            continue
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True, _key(resource)
        for container in template["spec"]["containers"] + template["spec"].get("initContainers", []):
            name, _, tag = container["image"].rpartition(":")
            assert name, f"{_key(resource)}: {container['image']} is not pinned"
            assert tag not in ("", "latest"), f"{_key(resource)}: {container['image']} is not pinned"


def test_renderer_refuses_what_it_does_not_support(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(KUSTOMIZE.KustomizeError, match="commonLabels"):
        KUSTOMIZE.build(tmp_path)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_serves_http_and_grpc_on_the_ports_its_settings_name(overlay: str) -> None:
    container = _container(overlay, "gateway", "gateway")
    env = {e["name"]: e.get("value") for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (
        ports
        == {"http": int(env["GATEWAY_PORT"]), "grpc": int(env["GATEWAY_GRPC_PORT"])}
        == {"http": 8000, "grpc": 8001}
    )
    service = _get(overlay, "Service", "gateway")
    assert {(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        ("http", 8000, "http"),
        ("grpc", 8001, "grpc"),
    }
