"""Checks that run inside Locust (``python -m tests.loadtests.locust_checks login|exposed|host``).

Locust monkey-patches the interpreter with gevent when imported, so the tests call these in a
subprocess (:mod:`tests.loadtests.test_locustguard`); each ends by printing ``<check>: ok``.
"""

from __future__ import annotations

import http.server
import os
import sys
import threading
from types import SimpleNamespace
from typing import Any

from locust.env import Environment
from locust.event import Events

from contract.manifest import ModelEntry, TensorSpec
from loadtests import locustfile, payload
from loadtests.locustguard import guard_web_ui
from loadtests.targets import Endpoints

MODEL = ModelEntry(
    name="m", inputs=(TensorSpec(name="x", shape=(2,)),), outputs=(TensorSpec(name="y", shape=(1,)),), max_batch=4
)


def login() -> None:
    os.environ["LOCUST_WEB_PASSWORD"] = "s3cret"
    env = Environment(user_classes=[], events=Events())
    web_ui = env.create_web_ui("127.0.0.1", 0, web_login=True, delayed_start=True)
    guard_web_ui(web_ui, SimpleNamespace(web_login=True, web_host="0.0.0.0"))
    client = web_ui.app.test_client()
    assert client.get("/").status_code == 302  # to the login page
    assert client.get("/stats/requests").status_code == 302
    wrong = client.post("/login_submit", data={"username": "duoserve", "password": "guess"})
    assert wrong.status_code == 302
    assert wrong.headers["Location"].endswith("/login"), wrong.headers
    assert client.get("/stats/requests").status_code == 302
    right = client.post("/login_submit", data={"username": "duoserve", "password": "s3cret"})
    assert right.headers["Location"].endswith("/"), right.headers
    assert client.get("/stats/requests").status_code == 200


def exposed() -> None:
    env = Environment(user_classes=[], events=Events())
    web_ui = env.create_web_ui("", 0, delayed_start=True)
    refused = ""
    try:
        guard_web_ui(web_ui, SimpleNamespace(web_login=False, web_host="*"))
    except RuntimeError as exc:
        refused = str(exc)
    assert refused.startswith("locust: the web UI would listen on every interface without a login"), refused


def host() -> None:
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(str(self.headers.get("X-API-Key")))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    other = f"http://127.0.0.1:{server.server_address[1]}"
    env = Environment(user_classes=[locustfile.GatewayTorch], events=Events(), host=other)
    failures: list[str] = []
    env.events.request.add_listener(lambda exception=None, **_: failures.append(str(exception)))
    endpoints = Endpoints(gateway="http://127.0.0.1:1", torch="", tf_rest="", gateway_api_key="k")
    env.duoserve = locustfile.Settings(  # type: ignore[attr-defined]
        endpoints=endpoints, model=MODEL, batch=1, bodies=payload.pool(MODEL, 1, 0, 2, None), pace=0.0,
        max_fail_ratio=0.01, max_p99_ms=0.0, compare_backends=["torch"],
    )  # fmt: skip
    locustfile.GatewayTorch.host = other  # what the web UI's swarm form does with a typed host
    user = locustfile.GatewayTorch(env)
    try:
        user.on_start()
    except locustfile.StopUser:
        pass
    else:
        raise AssertionError("the user went on")
    server.shutdown()
    assert seen == [], seen
    assert failures == [
        f"refusing to send gw_torch's key to {other}: the key belongs to http://127.0.0.1:1; set --gateway-url/"
        "--torch-url (or LOADTEST_GATEWAY_URL/LOADTEST_TORCH_URL) to the host you mean instead of typing another "
        "host into the web UI or --host"
    ], failures


if __name__ == "__main__":
    check = sys.argv[1]
    {"login": login, "exposed": exposed, "host": host}[check]()
    print(f"{check}: ok")
