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
    # bounded: the worst case (every window held open to its time bound, every figure unstable, every search
    # spending its budget with a retry past it, every confirmation stepping down) stays within about nine minutes
    w, c, s = p.windows, p.comparison, p.slo
    assert p.wrk is not None
    unloaded = s.warmup_s + 1.0 + 3 * s.window_s  # one user, three windows, enough for a p50
    probe = s.warmup_s + 1.0 + s.max_windows * max(s.window_s, s.max_window_s)  # + spawning the users
    load = c.repeats * len(p.targets) * (c.warmup_s + w.max_windows * max(w.window_s, w.max_window_s))
    search = min(s.search_budget_s + 2 * probe, 2 * s.max_probes * probe)
    load += len(s.targets) * (unloaded + search + s.confirmations * s.confirm_attempts * probe)
    assert load + p.wrk.duration_s <= 540
    # typical digits: every window holds its requests in window_s, figures stable after 3 windows, a search
    # of about 8 probes (or its budget), confirmations pass
    probe = s.warmup_s + 0.5 + 3 * s.window_s
    typical = c.repeats * len(p.targets) * (c.warmup_s + 3 * w.window_s)
    typical += len(s.targets) * (unloaded + min(8 * probe, s.search_budget_s + probe) + s.confirmations * probe)
    assert typical + p.wrk.duration_s <= 220
    # typical slow model (issue 22's InceptionV3: ~35 req/s closed loop, ~8 req/s under the SLO, one stack that
    # cannot meet the bound): windows held to their bound, searches to their budget; under ~6 minutes of
    # `make run` with the stack's start and stop
    probe = s.warmup_s + 0.5 + 3 * s.max_window_s
    slow = c.repeats * len(p.targets) * (c.warmup_s + 3 * w.max_window_s)
    slow += 2 * (unloaded + s.search_budget_s + probe + s.confirmations * probe) + (unloaded + probe)
    assert slow + p.wrk.duration_s <= 300


def test_a_probe_window_can_hold_a_p99_at_the_rates_a_slow_model_serves() -> None:
    from loadtests.stability import MIN_SAMPLES, WINDOW_COUNT, WINDOW_MIN_REQUESTS

    s = profile.load("default").slo
    assert s is not None
    assert WINDOW_MIN_REQUESTS * WINDOW_COUNT >= MIN_SAMPLES["p99"] == 100
    # at 8.5 req/s three windows held open to their bound hold the 100 latencies a p99 needs
    assert 8.5 * s.max_window_s * WINDOW_COUNT >= MIN_SAMPLES["p99"]
    assert s.start_rate is None  # the search starts from each target's unloaded latency


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


def test_the_triton_profile_compares_both_pytorch_servers_beside_tf_on_the_same_artifacts() -> None:
    p = profile.load("triton")
    assert set(p.targets) == {
        "torch", "torch_ort", "triton", "triton_ort", "tf",
        "gw_torch", "gw_torch_ort", "gw_triton", "gw_triton_ort", "gw_tf",
    }  # fmt: skip
    assert p.slo is not None
    assert set(p.slo.targets) == {"torch", "torch_ort", "triton", "triton_ort", "tf"}
    # on a stack without Triton its targets are dropped, as torch_ort's are for a model without ONNX
    dropped = p.served_by(["torch", "torch_ort", "tf"])
    assert set(dropped) == {"triton", "triton_ort", "gw_triton", "gw_triton_ort"}
