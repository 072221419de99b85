"""A small Dockerfile reader: instructions (continuations joined), ARG defaults, FROM resolution."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    """One instruction: upper-case keyword and its raw argument text."""

    keyword: str
    args: str

    def words(self) -> list[str]:
        """Exec-form JSON arrays as lists, shell form split like a shell; ``--flag=...`` options dropped."""
        text = self.args.strip()
        words = json.loads(text) if text.startswith("[") else shlex.split(text)
        return [w for w in words if not w.startswith("--")]


def parse(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile, comments dropped, ``\\`` continuations joined."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending:
        logical.append(pending)
    out = []
    for text in logical:
        keyword, _, args = text.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
    return out


def base_images(instructions: list[Instruction], build_args: dict[str, str] | None = None) -> list[str]:
    """Every FROM image with ``${ARG}`` references resolved (build args over the ARG defaults before FROM)."""
    values: dict[str, str] = {}
    images = []
    stages: set[str] = set()
    for ins in instructions:
        if ins.keyword == "ARG" and not images:
            name, _, default = ins.args.partition("=")
            values[name.strip()] = (build_args or {}).get(name.strip(), default.strip().strip('"'))
        elif ins.keyword == "FROM":
            words = ins.words()
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), words[0])
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2])
            if image not in stages:
                images.append(image)
    return images


def is_pinned(image: str) -> bool:
    """``repo:tag`` with a real tag (not ``latest``), or a digest."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest") and "$" not in image


def final_user(instructions: list[Instruction]) -> str | None:
    """The last USER (it is the one the container runs as)."""
    users = [ins.args.split(":")[0] for ins in instructions if ins.keyword == "USER"]
    return users[-1] if users else None


def copy_sources(instructions: list[Instruction]) -> list[str]:
    """Source paths of every COPY/ADD from the build context (not ``--from`` another stage)."""
    sources: list[str] = []
    for ins in instructions:
        if ins.keyword not in ("COPY", "ADD") or "--from=" in ins.args:
            continue
        words = ins.words()
        sources += words[:-1]
    return sources
