"""The retry (and hedge) budget: a share of the requests of a sliding window, plus a minimum."""

from __future__ import annotations

from gateway.budget import Budget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_spending_stays_within_the_share_of_requests() -> None:
    budget = Budget(0.2, window_s=10, clock=Clock())
    spent = 0
    for _ in range(100):
        budget.request()
        spent += budget.spend()
    assert spent == 20
    assert budget.denied == 80


def test_the_minimum_allows_the_first_retries_of_a_quiet_gateway() -> None:
    budget = Budget(0.0, window_s=10, minimum=3, clock=Clock())
    budget.request()
    assert [budget.spend() for _ in range(5)] == [True, True, True, False, False]


def test_old_requests_and_retries_leave_the_window() -> None:
    clock = Clock()
    budget = Budget(0.5, window_s=10, clock=clock)
    for _ in range(10):
        budget.request()
    assert sum(budget.spend() for _ in range(10)) == 5
    clock.now += 11  # all of it has left the window
    assert not budget.allows()
    budget.request()
    budget.request()
    assert budget.spend()
    assert not budget.spend()
