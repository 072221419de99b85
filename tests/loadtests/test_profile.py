from __future__ import annotations

from pathlib import Path

import pytest

from loadtests import profile
from loadtests.__main__ import _apply, _parser


def test_default_profile_is_the_make_run_comparison() -> None:
    p = profile.load("default")
    assert p.model == "digits"
    assert set(p.targets) == {"torch", "torch_ort", "tf", "gw_torch", "gw_torch_ort", "gw_tf", "gw_compare"}
    assert p.comparison.repeats >= 3
    assert p.slo is not None
    assert p.step is not None
    # bounded: the whole profile's load stays within about three minutes (SLO probe warm-up <= 1.6 s)
    c = p.comparison
    load = c.repeats * len(p.targets) * (c.warmup_s + c.duration_s)
    load += len(p.step.targets) * len(p.step.users) * (p.step.step_s + p.step.settle_s)
    load += len(p.slo.targets) * (
        p.slo.max_probes * (p.slo.probe_s + 1.6) + p.slo.confirm_attempts * (p.slo.confirm_s + 1.6)
    )
    assert load <= 165  # worst case; a typical run is about 140 s


def test_command_line_overrides() -> None:
    args = _parser().parse_args(
        ["run", "--profile", "quick", "--model", "mlp", "--duration", "2s", "--users", "3",
         "--targets", "torch,gw_compare", "--repeats", "4", "--slo-ms", "80", "--no-step"]
    )  # fmt: skip
    p = _apply(args)
    assert (p.model, p.comparison.duration_s, p.comparison.users, p.comparison.repeats) == ("mlp", 2.0, 3, 4)
    assert p.targets == ["torch", "gw_compare"]
    assert p.slo is not None
    assert p.slo.targets == ["torch"]
    assert p.slo.slo_ms == 80
    assert p.step is None


def test_bad_profiles_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"known: .*default"):
        profile.load("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [torch, grpc]\n")
    with pytest.raises(ValueError, match="unknown target 'grpc'"):
        profile.load(str(bad))
