from __future__ import annotations

from pathlib import Path

import pytest

from loadtests import profile
from loadtests.__main__ import _apply, _parser
from loadtests.profile import Wrk, load


def test_default_profile_is_the_make_run_comparison() -> None:
    p = profile.load("default")
    assert p.model == "digits"
    assert set(p.targets) == {"torch", "torch_ort", "tf", "gw_torch", "gw_torch_ort", "gw_tf", "gw_compare"}
    assert p.comparison.repeats >= 2
    assert p.slo is not None
    assert p.slo.confirmations >= 3
    assert set(p.slo.targets) == {"torch", "torch_ort", "tf"}
    # perf_analyzer's rule: three windows within 10 %
    assert (p.windows.min_windows, p.windows.tolerance) == (3, 0.10)
    # bounded: the worst case (every figure unstable, every probe used) stays within about six minutes
    w, c, s = p.windows, p.comparison, p.slo
    load = c.repeats * len(p.targets) * (c.warmup_s + w.max_windows * w.window_s)
    probe = s.warmup_s + 1.0 + s.max_windows * s.window_s  # + spawning the users
    load += len(s.targets) * (s.max_probes + s.confirmations * s.confirm_attempts) * probe
    assert load <= 400
    # typical: comparison figures stable after 3 windows, a search of about 9 probes, confirmations pass
    typical = c.repeats * len(p.targets) * (c.warmup_s + 3 * w.window_s)
    typical += len(s.targets) * (9 + s.confirmations) * (s.warmup_s + 0.5 + 3 * s.window_s)
    assert typical <= 220


def test_command_line_overrides() -> None:
    args = _parser().parse_args(
        ["run", "--profile", "quick", "--model", "mlp", "--window", "2s", "--max-windows", "7", "--users", "3",
         "--targets", "torch,gw_compare", "--repeats", "4", "--slo-ms", "80", "--no-step"]
    )  # fmt: skip
    p = _apply(args)
    assert (p.model, p.windows.window_s, p.windows.max_windows) == ("mlp", 2.0, 7)
    assert (p.comparison.users, p.comparison.repeats) == (3, 4)
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


def test_unknown_keys_and_too_few_confirmations_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("slo: {slo_ms: 50, probe_s: 2}\n")
    with pytest.raises(ValueError, match=r"slo: unknown key\(s\) probe_s"):
        profile.load(str(bad))
    bad.write_text("windows: {min_windows: 2}\n")
    with pytest.raises(ValueError, match="3 <= min_windows <= max_windows"):
        profile.load(str(bad))


def test_a_model_without_torch_ort_drops_its_targets_everywhere() -> None:
    profile = load("default")
    profile.wrk = Wrk(target="torch_ort")
    dropped = profile.served_by(["torch", "tf"])
    assert "torch_ort" in dropped
    assert "gw_torch_ort" in dropped
    assert all("torch_ort" not in t for t in profile.all_targets())
    assert "gw_compare" not in dropped  # /compare asks every backend the model has
    assert "torch" in profile.targets
    assert "tf" in profile.targets
    assert profile.wrk.target is not None
    assert "torch_ort" not in profile.wrk.target
    assert profile.served_by(["torch", "tf"]) == []
