"""A scenario profile: a YAML file under ``loadtests/scenarios/`` plus command-line overrides."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loadtests.targets import TARGETS

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


@dataclass
class Comparison:
    users: int = 8
    warmup_s: float = 1.0
    duration_s: float = 3.0
    repeats: int = 3


@dataclass
class Step:
    users: list[int] = field(default_factory=lambda: [1, 4, 16])
    step_s: float = 2.0
    settle_s: float = 0.3
    targets: list[str] = field(default_factory=list)


@dataclass
class Slo:
    slo_ms: float = 50.0
    probe_s: float = 1.5
    confirm_s: float = 3.0
    max_probes: int = 3
    confirm_attempts: int = 2
    rel_tol: float = 0.15
    max_users: int = 128
    targets: list[str] = field(default_factory=list)


@dataclass
class Wrk:
    target: str | None = "torch"
    duration_s: float = 3.0


@dataclass
class Profile:
    """Everything one ``python -m loadtests run`` does."""

    model: str = "digits"
    batch: int = 1
    seed: int = 0
    targets: list[str] = field(default_factory=lambda: list(TARGETS))
    max_fail_ratio: float = 0.01
    comparison: Comparison = field(default_factory=Comparison)
    step: Step | None = field(default_factory=Step)
    slo: Slo | None = field(default_factory=Slo)
    wrk: Wrk | None = field(default_factory=Wrk)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad value."""
        for name in self.all_targets():
            if name not in TARGETS:
                raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
        if self.comparison.repeats < 1 or self.comparison.users < 1 or self.comparison.duration_s <= 0:
            raise ValueError("comparison needs repeats >= 1, users >= 1 and duration_s > 0")
        if self.step and (not self.step.users or min(self.step.users) < 1):
            raise ValueError("step.users must be a non-empty list of positive counts")
        if self.slo and self.slo.slo_ms <= 0:
            raise ValueError("slo.slo_ms must be positive")

    def all_targets(self) -> list[str]:
        names = list(self.targets)
        names += self.step.targets if self.step else []
        names += self.slo.targets if self.slo else []
        names += [self.wrk.target] if self.wrk and self.wrk.target else []
        return names


def load(name_or_path: str) -> Profile:
    """Read a profile by name (``default``, ``quick``) or path."""
    path = Path(name_or_path)
    if not path.exists():
        path = SCENARIOS / f"{name_or_path}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.yaml")))
        raise FileNotFoundError(f"no scenario {name_or_path!r}; known: {known}")
    data: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    profile = Profile(
        model=data.get("model", "digits"),
        batch=int(data.get("batch", 1)),
        seed=int(data.get("seed", 0)),
        targets=list(data.get("targets", list(TARGETS))),
        max_fail_ratio=float(data.get("max_fail_ratio", 0.01)),
        comparison=Comparison(**data.get("comparison", {})),
        step=Step(**data["step"]) if data.get("step") else None,
        slo=Slo(**data["slo"]) if data.get("slo") else None,
        wrk=Wrk(**data["wrk"]) if data.get("wrk") else None,
    )
    profile.check()
    return profile
