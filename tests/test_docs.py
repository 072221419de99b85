"""The README and docs cite only files that exist (generated folders aside)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")), "deploy/k8s/README.md"]
#: a backticked path that starts in one of the repository's own folders (or is a top-level file)
TOP = ("services/", "gateway/", "loadtests/", "stack/", "contract/", "deploy/", "docs/", "tests/", "benchmarks/",
       "examples/", ".ci/")  # fmt: skip
TOP_FILES = re.compile(r"(docker-compose[\w.-]*\.yml|Makefile|pyproject\.toml|requirements\.lock|README\.md)")
CITED = re.compile(r"`([A-Za-z0-9_.\-/]+)`")


def _cited(text: str) -> set[str]:
    found = set()
    for match in CITED.finditer(text):
        path = match.group(1).rstrip("/").rstrip(".")
        if path.startswith(TOP) or TOP_FILES.fullmatch(path):
            found.add(path)
    return found


@pytest.mark.parametrize("doc", DOCS)
def test_every_cited_file_exists(doc: str) -> None:
    cited = _cited((REPO / doc).read_text())
    assert cited, f"{doc} cites no file: the pattern is wrong"
    missing = sorted(p for p in cited if not (REPO / p).exists() and "<" not in p and "*" not in p)
    assert not missing, f"{doc} cites files that do not exist: {missing}"


def test_keras_files_are_loaded_in_safe_mode() -> None:
    """Keras 3 refuses a Lambda layer's serialized Python in safe_mode (its default): nothing turns it off."""
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("services", "stack", "gateway", "loadtests", "benchmarks", "examples", "contract")
        for path in (REPO / folder).rglob("*.py")
        if re.search(r"safe_mode\s*=\s*False", path.read_text())
    ]
    assert offenders == []


@pytest.mark.parametrize("doc", ["README.md", "docs/models.md"])
def test_models_add_says_trusted_files_only(doc: str) -> None:
    text = (REPO / doc).read_text()
    assert "Trusted files only" in text
    assert "safe_mode" in text
