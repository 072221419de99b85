"""A scenario profile: a YAML file under ``loadtests/scenarios/`` plus command-line overrides."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from loadtests.slo import Plan
from loadtests.targets import TARGETS

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


@dataclass
class WindowPlan:
    """The stability rule's windows (perf_analyzer: 5 s windows, last 3 within 10 %)."""

    window_s: float = 1.0
    min_windows: int = 3
    max_windows: int = 5
    tolerance: float = 0.10
    #: a window stays open past ``window_s`` until it holds enough requests for the figure's p99, up to this
    #: (never shorter than ``window_s``)
    max_window_s: float = 1.5


@dataclass
class Comparison:
    """Fixed concurrency (closed loop), every target, repeats in a shuffled order."""

    users: int = 8
    warmup_s: float = 1.0
    repeats: int = 2


@dataclass
class Step:
    users: list[int] = field(default_factory=lambda: [1, 4, 16])
    settle_s: float = 0.3
    targets: list[str] = field(default_factory=list)


@dataclass
class Slo:
    """The capacity search (:mod:`loadtests.slo`): open-loop Poisson probes measured in windows."""

    slo_ms: float = 50.0
    # the search's own defaults, in one place (loadtests.slo.Plan); no start rate: from the unloaded latency
    start_rate: float | None = Plan.start_rate
    growth: float = Plan.growth
    rel_tol: float = Plan.rel_tol
    max_probes: int = Plan.max_probes
    confirmations: int = Plan.confirmations
    confirm_attempts: int = Plan.confirm_attempts
    warmup_s: float = 0.5
    max_users: int = 256
    #: probes' windows (fewer and shorter than the comparison's keeps the search within budget)
    window_s: float = 1.0
    max_windows: int = 4
    #: a probe's window stays open until it holds enough requests for the probe's p99, up to this
    max_window_s: float = 4.0
    #: seconds of probing after which a target's search (round 0) takes no new probe
    search_budget_s: float = 30.0
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
    windows: WindowPlan = field(default_factory=WindowPlan)
    comparison: Comparison = field(default_factory=Comparison)
    step: Step | None = None
    slo: Slo | None = field(default_factory=Slo)
    wrk: Wrk | None = field(default_factory=Wrk)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad value."""
        for name in self.all_targets():
            if name not in TARGETS:
                raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
        if self.comparison.repeats < 1 or self.comparison.users < 1:
            raise ValueError("comparison needs repeats >= 1 and users >= 1")
        w = self.windows
        if w.window_s <= 0 or not 3 <= w.min_windows <= w.max_windows or not 0 < w.tolerance < 1:
            raise ValueError("windows need window_s > 0, 3 <= min_windows <= max_windows and 0 < tolerance < 1")
        if self.step and (not self.step.users or min(self.step.users) < 1):
            raise ValueError("step.users must be a non-empty list of positive counts")
        if self.slo:
            if self.slo.slo_ms <= 0:
                raise ValueError("slo.slo_ms must be positive")
            if self.slo.max_windows < 3 or self.slo.window_s <= 0:
                raise ValueError("slo needs window_s > 0 and max_windows >= 3")
            if self.slo.search_budget_s <= 0:
                raise ValueError("slo.search_budget_s must be positive")
            if "gw_compare" in self.slo.targets:
                raise ValueError("slo.targets cannot hold gw_compare (its rate is not one backend's)")

    def served_by(self, backends: list[str]) -> list[str]:
        """Drop every target whose backend does not serve the model (a model with no ONNX artifact has no
        ``torch_ort``); returns the dropped ones."""

        def keep(name: str) -> bool:
            return TARGETS[name].backend in (*backends, "all")

        dropped = [t for t in dict.fromkeys(self.all_targets()) if not keep(t)]
        self.targets = [t for t in self.targets if keep(t)]
        if self.step:
            self.step.targets = [t for t in self.step.targets if keep(t)]
        if self.slo:
            self.slo.targets = [t for t in self.slo.targets if keep(t)]
        if self.wrk and self.wrk.target and not keep(self.wrk.target):
            self.wrk.target = next((t for t in self.targets if t != "gw_compare"), None)
        return dropped

    def all_targets(self) -> list[str]:
        names = list(self.targets)
        names += self.step.targets if self.step else []
        names += self.slo.targets if self.slo else []
        names += [self.wrk.target] if self.wrk and self.wrk.target else []
        return names


def _section(cls: Any, data: Any, name: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{name} must be a mapping")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**data)


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
        windows=_section(WindowPlan, data.get("windows", {}), "windows"),
        comparison=_section(Comparison, data.get("comparison", {}), "comparison"),
        step=_section(Step, data["step"], "step") if data.get("step") else None,
        slo=_section(Slo, data["slo"], "slo") if data.get("slo") else None,
        wrk=_section(Wrk, data["wrk"], "wrk") if data.get("wrk") else None,
    )
    profile.check()
    return profile
