"""What the native launchers share in their settings: a loopback-only host and the list of models to load.

TorchServe (``TORCH_API_*``) and Triton (``TRITON_API_*``) both take a comma-separated list of
model names or a keyword (``all``; Triton also ``none``), and both must listen on loopback only:
their management, metrics and inference APIs never face the network natively.
"""

from __future__ import annotations

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def loopback(value: str, variable: str) -> str:
    """``value`` when it is a loopback address; ``ValueError`` naming ``variable`` otherwise."""
    if value not in LOOPBACK:
        raise ValueError(f"{variable} must be a loopback address (127.0.0.1, localhost or ::1)")
    return value


def model_list(value: str, variable: str, what: str, keywords: tuple[str, ...] = ("all",)) -> str:
    """``value`` normalised (``a, b`` → ``a,b``): one of ``keywords`` or names of letters, digits and ``_``."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        quoted = ", ".join(f'"{k}"' for k in keywords)
        raise ValueError(f"{variable} must be {quoted} or a comma-separated list of {what}s")
    for name in names:
        if name not in keywords and not name.replace("_", "").isalnum():
            article = "an" if what[0] in "aeiou" else "a"
            raise ValueError(f"{variable}: {name!r} is not {article} {what}")
    return ",".join(names)


def chosen(value: str, available: list[str], variable: str, missing_from: str) -> list[str]:
    """The names ``value`` selects from ``available`` (``all``: every one, sorted; ``none``: none); a name not
    available is refused, naming ``missing_from`` and what is there."""
    if value == "all":
        return sorted(available)
    if value == "none":
        return []
    names = value.split(",")
    missing = [n for n in names if n not in available]
    if missing:
        have = ", ".join(sorted(available))
        raise ValueError(f"{variable} names {', '.join(missing)}, {missing_from} (have: {have})")
    return names
