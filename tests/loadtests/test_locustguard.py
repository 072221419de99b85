"""Locust keeps its keys: no open web UI without a login, a real login check, keys only to their own host.

The checks that need Locust itself run in a subprocess (:mod:`tests.loadtests.locust_checks`):
importing Locust monkey-patches the interpreter with gevent.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from loadtests.locustguard import host_problem, ui_problem
from tests.utils.servers import REPO


def test_an_exposed_ui_needs_a_login() -> None:
    assert ui_problem("127.0.0.1", False, None) is None
    assert ui_problem("::1", False, None) is None
    assert ui_problem("localhost", False, None) is None
    problem = ui_problem("*", False, None)
    assert problem is not None
    assert problem.startswith("the web UI would listen on every interface without a login")
    assert "--web-host 127.0.0.1, or --web-login with LOCUST_WEB_PASSWORD set" in problem
    assert "listen on 0.0.0.0 without" in str(ui_problem("0.0.0.0", False, None))
    assert ui_problem("0.0.0.0", True, "pw") is None
    assert ui_problem("0.0.0.0", True, None) == (
        "--web-login needs LOCUST_WEB_PASSWORD (the password of the web UI's login) in the environment"
    )


def test_keys_go_only_to_their_configured_host() -> None:
    assert host_problem("gw_torch", "http://gateway:8000", "http://gateway:8000/", True) is None
    assert host_problem("gw_torch", "http://127.0.0.1:80", "http://127.0.0.1", True) is None
    # no key, nothing to protect
    assert host_problem("tf", "http://tf_api:8501", "http://elsewhere:1", False) is None
    for other in ("http://evil.example:8000", "http://gateway:8001", "https://gateway:8000", "http://localhost:8000"):
        found = host_problem("gw_torch", "http://gateway:8000", other, True)
        assert found is not None
        assert found.startswith(f"refusing to send gw_torch's key to {other}: the key belongs to http://gateway:8000")


@pytest.mark.parametrize("check", ["login", "exposed", "host"])
def test_with_locust_itself(check: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.loadtests.locust_checks", check],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert result.stdout.strip().endswith(f"{check}: ok")
