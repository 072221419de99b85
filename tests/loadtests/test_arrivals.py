"""The Poisson schedule of the open-loop users: rate, memorylessness, seeds, and the users a rate needs."""

from __future__ import annotations

import statistics

import pytest

from loadtests.arrivals import PoissonSchedule, gaps, user_seed, users_for


def test_gaps_are_exponential_with_the_given_rate() -> None:
    sample = gaps(50.0, seed=7, count=20_000)
    mean = statistics.fmean(sample)
    assert mean == pytest.approx(1 / 50, rel=0.03)
    # an exponential's standard deviation equals its mean (coefficient of variation 1)
    assert statistics.pstdev(sample) / mean == pytest.approx(1.0, abs=0.04)
    # memoryless: P(gap > 2/rate) = e^-2
    assert sum(g > 2 / 50 for g in sample) / len(sample) == pytest.approx(0.1353, abs=0.01)


def test_the_same_seed_gives_the_same_schedule_and_another_does_not() -> None:
    assert gaps(10.0, 3, 50) == gaps(10.0, 3, 50)
    assert gaps(10.0, 3, 50) != gaps(10.0, 4, 50)
    assert user_seed(0, "slo_tf_s1", 5) == user_seed(0, "slo_tf_s1", 5)
    assert user_seed(0, "slo_tf_s1", 5) != user_seed(0, "slo_tf_s1", 6)


def test_wait_and_advance() -> None:
    schedule = PoissonSchedule(4.0, seed=1, start=100.0)
    due = schedule.due
    assert due > 100.0
    assert schedule.wait(100.0) == pytest.approx(due - 100.0)
    assert schedule.wait(due + 5) == 0.0  # late: send at once
    assert schedule.advance() == due
    assert schedule.due > due


def test_users_for_covers_twice_the_requests_in_flight() -> None:
    assert users_for(1000.0, 0.05) == 102
    assert users_for(10.0, 0.05) == 4
    assert users_for(100_000.0, 0.05) == 256
    with pytest.raises(ValueError, match="positive"):
        users_for(0.0, 0.05)
    with pytest.raises(ValueError, match="positive"):
        PoissonSchedule(0.0, 1, 0.0)
