"""How every service says that one of its settings is wrong: one line naming the environment variable.

The torch_api launcher, the tf_api server and the gateway each have one pydantic-settings
class with an ``env_prefix``; :func:`load` builds it and turns any validation error into a
:class:`SettingsError` such as ``TF_API_REST_PORT: Input should be less than or equal to
65535 (got '70000')``, which the service prints before exiting with status 2.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import pydantic_settings
from pydantic import ValidationError

T = TypeVar("T", bound=pydantic_settings.BaseSettings)


class SettingsError(ValueError):
    """A setting is wrong; the message starts with the environment variable's name."""


def env_name(prefix: str, field: str) -> str:
    """``("GATEWAY_", "policies")`` -> ``GATEWAY_POLICIES``."""
    return prefix + field.upper()


def describe(exc: ValidationError, prefix: str) -> str:
    """Every error of ``exc`` as ``VARIABLE[path]: message (got value)``, joined by ``; ``."""
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        msg = str(error["msg"]).removeprefix("Value error, ")
        if not loc:
            lines.append(msg)  # a model-level validator already names its variables
            continue
        where = env_name(prefix, loc[0]) + "".join(f"[{part}]" for part in loc[1:])
        got = error.get("input")
        shown = f" (got {got!r})" if isinstance(got, (str, int, float)) and error["type"] != "missing" else ""
        lines.append(f"{where}: {msg}{shown}")
    return "; ".join(lines)


def load(cls: type[T], **overrides: Any) -> T:
    """``cls(**overrides)`` from the environment; :class:`SettingsError` names the bad variable."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe(exc, prefix)) from None
    except pydantic_settings.SettingsError as exc:  # a complex (JSON) value that does not parse
        found = re.search(r'field "(\w+)"', str(exc))
        name = env_name(prefix, found.group(1)) if found else f"a {prefix}* variable"
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise SettingsError(f"{name}: not valid JSON{cause}") from None
