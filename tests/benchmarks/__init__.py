"""Tests of the benchmarks package (no timing assertions: speed belongs in the benchmarks)."""
