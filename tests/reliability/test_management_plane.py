"""TorchServe's management plane stays closed: not through the gateway, not from compose, not without keys.

Covered elsewhere and not repeated here: TorchServe refuses inference without the inference key
and registration with the management key (405, model API off), and binds every address to
loopback (``tests/services/torch_api/test_server.py``: ``test_inference_needs_the_token``,
``test_management_api_is_not_on_the_inference_port_and_registration_is_off``,
``test_effective_config_binds_loopback_and_restricts_urls``); only the gateway and the
Locust UI publish ports in compose (``tests/deploy/test_compose.py``). Path traversal
through the gateway: ``test_hostile_input.py``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.compose import BASE, CPU, DEFAULT, merged, port_of
from tests.reliability._support import digits_body, raw_exchange, running_gateway, status_of
from tests.utils.stack import Stack

pytestmark = pytest.mark.slow
#: the gateway's whole public surface; anything else is 404/405
ROUTES = {
    ("/v1/models/{model}/predict", "post"),
    ("/v1/models/{model}/compare", "post"),
    ("/v1/models", "get"),
    ("/v1/stats", "get"),
    ("/v1/stats/reset", "post"),
    ("/metrics", "get"),
    ("/health/live", "get"),
    ("/health/ready", "get"),
    # the Open Inference Protocol (the catch-all 404 under /v2 is not in the document)
    ("/v2", "get"),
    ("/v2/health/live", "get"),
    ("/v2/health/ready", "get"),
    ("/v2/models/{model}", "get"),
    ("/v2/models/{model}/versions/{version}", "get"),
    ("/v2/models/{model}/ready", "get"),
    ("/v2/models/{model}/versions/{version}/ready", "get"),
    ("/v2/models/{model}/infer", "post"),
    ("/v2/models/{model}/versions/{version}/infer", "post"),
}
MANAGEMENT_PORTS = {8081, 7071}
INTERNAL_PORTS = {8080, 8082, 7070, 8500, 8501, 9090}
PUBLISHERS = {"gateway", "locust-master", "grafana"}


def _torch_keys(stack: Stack) -> dict[str, str]:
    data = json.loads(stack.info.torch_key_file.read_text())
    return {name: str(entry["key"]) for name, entry in data.items()}


def test_gateway_routes_are_only_the_public_api(stack: Stack) -> None:
    schema = httpx.get(f"{stack.info.gateway}/openapi.json", timeout=10).json()
    found = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert found == ROUTES


@pytest.mark.parametrize("files", [BASE, DEFAULT, CPU], ids=["base", "default", "cpu"])
def test_no_compose_service_publishes_a_management_or_backend_port(files: tuple[str, ...]) -> None:
    services = merged(files)["services"]
    for name, service in services.items():
        published = service.get("ports") or []
        if published:
            assert name in PUBLISHERS, f"{name} publishes {published}"
        for port in published:
            host, _, target = port_of(port)
            assert target not in MANAGEMENT_PORTS | INTERNAL_PORTS, f"{name} publishes {port}"
            assert host == "127.0.0.1", f"{name} publishes {port} beyond loopback by default"
        exposed = {int(str(p).split("/")[0]) for p in service.get("expose") or []}
        assert not exposed & MANAGEMENT_PORTS, f"{name} exposes a management port: {exposed}"
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if "MANAGEMENT" in key.upper():
                assert "0.0.0.0" not in str(value), f"{name}: {key}={value} binds the management API publicly"


def test_management_api_refuses_calls_without_the_management_key(stack: Stack) -> None:
    management = f"http://127.0.0.1:{stack.env['TORCH_API_MANAGEMENT_PORT']}"
    keys = _torch_keys(stack)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {keys['inference']}"}):
        listing = httpx.get(f"{management}/models", headers=headers, timeout=10)
        assert listing.status_code in (400, 401, 403), listing.text
        assert "Token Authorization failed" in listing.text
        register = httpx.post(
            f"{management}/models", params={"url": "https://example.com/evil.mar"}, headers=headers, timeout=10
        )
        assert register.status_code in (400, 401, 403, 405), register.text


def test_allowed_urls_admits_only_the_local_model_store(stack: Stack) -> None:
    config = Path(stack.run_dir) / "torch_api" / "config.properties"
    line = next(ln for ln in config.read_text().splitlines() if ln.startswith("allowed_urls="))
    pattern = re.compile(line.split("=", 1)[1].replace("\\\\", "\\"))  # .properties escapes backslashes
    store = pattern.pattern.removeprefix("^").split("[", 1)[0].replace("\\", "")
    assert pattern.fullmatch(f"{store}digits.mar")
    for url in (
        "https://example.com/evil.mar",
        "http://127.0.0.1:8000/digits.mar",
        "HTTP://example.com/digits.mar",
        "ftp://example.com/digits.mar",
        "file:///etc/passwd",
        f"{store}../evil.mar",
        f"{store}digits.mar?x=https://example.com",
        f"{store}sub/digits.mar",
        f"{store}digits.mar\nhttps://example.com/evil.mar",
        "jar:https://example.com/evil.jar!/x.mar",
    ):
        assert not pattern.search(url), url


def test_tf_rest_port_enforces_its_body_limit(stack: Stack) -> None:
    port = int(stack.info.tf_rest.rsplit(":", 1)[1])
    head = (
        "POST /v1/models/digits:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {300 * 1024 * 1024}\r\n\r\n"
    )
    raw = raw_exchange(port, [head.encode(), b'{"instances": ['], timeout_s=10)
    assert status_of(raw) == 413, raw[:300]
    assert b"exceeds" in raw or b"limit" in raw


@pytest.fixture
def keyed_gateway(stack: Stack, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    key = "gwkey-" + secrets.token_hex(16)
    with running_gateway(stack, tmp_path, GATEWAY_API_KEY=key, GATEWAY_LOG_LEVEL="debug") as gateway:
        yield gateway.url, key, tmp_path


def test_no_secret_is_logged(stack: Stack, keyed_gateway: tuple[str, str, Path]) -> None:
    url, key, log_dir = keyed_gateway
    good = {"Content-Type": "application/json", "X-API-Key": key}
    assert httpx.post(f"{url}/v1/models/digits/predict", content=digits_body(), headers=good).status_code == 200
    wrong = {"Content-Type": "application/json", "Authorization": f"Bearer {key}x"}
    refused = httpx.post(f"{url}/v1/models/digits/predict", content=digits_body(), headers=wrong)
    assert refused.status_code == 401
    assert key not in refused.text
    bad = httpx.post(f"{url}/v1/models/digits/predict", content=b"{", headers=good)
    assert bad.status_code == 422
    assert httpx.get(f"{url}/v1/models", headers=good).status_code == 200
    secrets_ = {"GATEWAY_API_KEY": key, **{f"torch {k} key": v for k, v in _torch_keys(stack).items()}}
    logs = [p for p in [*Path(stack.log_dir).rglob("*"), *log_dir.rglob("*.log")] if p.is_file()]
    assert logs
    for path in logs:
        text = path.read_text(errors="replace")
        for name, value in secrets_.items():
            assert value not in text, f"{name} appears in {path}"
