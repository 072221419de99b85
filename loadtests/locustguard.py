"""What keeps a Locust run from handing out keys: the web UI's exposure and login, and the hosts keys go to.

- The web UI may listen on a non-loopback interface only with ``--web-login``; the login
  checks ``LOCUST_WEB_USER`` (default ``duoserve``) and ``LOCUST_WEB_PASSWORD`` (required
  with ``--web-login``) in constant time. Locust 2.47's ``--web-login`` only draws a login
  page: the project supplies the check (:func:`install_login`), as Locust's docs ask.
- A user sends the gateway's API key or TorchServe's key only to the host its target is
  configured with (``stack.json`` or ``--gateway-url``/``--torch-url``). A host typed into the
  UI or given with ``--host`` that differs is refused with a message naming both
  (:func:`host_problem`): nothing is sent there.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from typing import Any
from urllib.parse import urlsplit

USER_VARIABLE = "LOCUST_WEB_USER"
PASSWORD_VARIABLE = "LOCUST_WEB_PASSWORD"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def ui_problem(web_host: str, web_login: bool, password: str | None) -> str | None:
    """Why this web UI must not start (None: it may)."""
    if web_login and not password:
        return f"--web-login needs {PASSWORD_VARIABLE} (the password of the web UI's login) in the environment"
    if not web_login and not _is_loopback(web_host):
        where = "every interface" if web_host in ("", "*") else web_host
        return (
            f"the web UI would listen on {where} without a login, and its users hold the gateway's and "
            f"TorchServe's keys: add --web-host 127.0.0.1, or --web-login with {PASSWORD_VARIABLE} set"
        )
    return None


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = (parts.scheme or "http").lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def host_problem(target: str, configured: str, actual: str | None, sends_key: bool) -> str | None:
    """Why a user of ``target`` must not send to ``actual`` (None: it may).

    Only a user that would attach a key is held to its configured host; scheme, host and
    port must all agree (``localhost`` and ``127.0.0.1`` are different hosts here).
    """
    if not sends_key or not actual or _origin(actual) == _origin(configured):
        return None
    return (
        f"refusing to send {target}'s key to {actual}: the key belongs to {configured or '(no host configured)'}; "
        "set --gateway-url/--torch-url (or LOADTEST_GATEWAY_URL/LOADTEST_TORCH_URL) to the host you mean "
        "instead of typing another host into the web UI or --host"
    )


def install_login(web_ui: Any, user: str, password: str) -> None:
    """Check the login page's form against ``user``/``password`` (Locust's flask-login hooks)."""
    from flask import Blueprint, redirect, request, session, url_for
    from flask_login import UserMixin, login_user  # type: ignore[import-untyped]

    class _User(UserMixin):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            self.id = name

    def load(user_id: str) -> _User | None:
        return _User(user_id) if hmac.compare_digest(user_id, user) else None

    blueprint = Blueprint("duoserve_login", __name__)

    @blueprint.route("/login_submit", methods=["POST"])
    def login_submit() -> Any:
        given_user = request.form.get("username", "")
        given_password = request.form.get("password", "")
        ok_user = hmac.compare_digest(given_user.encode(), user.encode())
        ok_password = hmac.compare_digest(given_password.encode(), password.encode())
        if ok_user and ok_password:
            login_user(_User(user))
            return redirect(url_for("locust.index"))
        session["auth_error"] = "wrong user name or password"
        return redirect(url_for("locust.login"))

    web_ui.login_manager.user_loader(load)
    web_ui.app.config["SECRET_KEY"] = secrets.token_bytes(32)
    web_ui.auth_args = {"username_password_callback": "/login_submit"}
    web_ui.app.register_blueprint(blueprint)


def guard_web_ui(web_ui: Any, options: Any) -> None:
    """Refuse an exposed UI without a login (``RuntimeError``, fatal in Locust's init); install the login."""
    if web_ui is None or options is None:
        return
    web_login = bool(getattr(options, "web_login", False))
    password = os.environ.get(PASSWORD_VARIABLE)
    problem = ui_problem(str(getattr(options, "web_host", "*")), web_login, password)
    if problem:
        raise RuntimeError(f"locust: {problem}")
    if web_login:
        assert password is not None
        install_login(web_ui, os.environ.get(USER_VARIABLE) or "duoserve", password)
