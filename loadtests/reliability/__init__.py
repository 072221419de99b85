"""Reliability benchmark: faults, overload and soak against a running stack (``python -m loadtests.reliability``).

The figures go to docs/reliability.md; the tests in ``tests/reliability/`` assert the same
behaviour on short runs without asserting timings.
"""
