"""The parity gate: every produced artifact against the source model's own runtime, output by output.

An artifact passes when, for every output and every checked input batch,
``|candidate - reference| <= atol + rtol * |reference|`` elementwise (numpy's ``allclose``
rule; ``rtol`` is 0 unless ``--rtol`` is given). The figures recorded per output are the
largest absolute difference and the largest difference relative to the output's scale
(``max |a - b| / max |b|``). A reference that holds NaN or infinity is refused before any
comparison: parity on it would mean nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from contract.manifest import OutputParity, ParityRecord

from .spec import RefusedError

Outputs = Mapping[str, np.ndarray]


def check_reference(case: str, outputs: Outputs) -> None:
    """Refuse a reference whose outputs hold NaN or infinity."""
    for name, value in outputs.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise RefusedError(f"the source model's output {name} holds NaN or infinity on {case}; nothing to compare")


def differences(reference: Outputs, candidate: Outputs, what: str, case: str) -> dict[str, OutputParity]:
    """Per output: (max abs, max rel to the output's scale) of ``candidate`` against ``reference``."""
    missing = [n for n in reference if n not in candidate]
    if missing:
        raise RefusedError(f"{what} has no output {missing[0]!r} on {case} (it gave {', '.join(candidate)})")
    found: dict[str, OutputParity] = {}
    for name, ref in reference.items():
        got = np.asarray(candidate[name])
        if got.shape != ref.shape:
            raise RefusedError(
                f"{what}: output {name} has shape {list(got.shape)} on {case}, the source gives {list(ref.shape)}"
            )
        a, b = got.astype(np.float64), ref.astype(np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.abs(a - b)
        max_abs = float(np.max(diff)) if diff.size else 0.0
        if diff.size and not np.isfinite(diff).all():
            max_abs = float("inf")
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        found[name] = OutputParity(max_abs=max_abs, max_rel=max_abs / scale if scale > 0 else max_abs)
    return found


def within(reference: Outputs, candidate: Outputs, atol: float, rtol: float) -> dict[str, bool]:
    """Per output, whether every element is within ``atol + rtol * |reference|``."""
    return {
        name: bool(np.allclose(np.asarray(candidate[name], np.float64), ref.astype(np.float64), rtol=rtol, atol=atol))
        for name, ref in reference.items()
    }


class Gate:
    """Collects one artifact's comparisons over every case and decides."""

    def __init__(self, what: str, against: str, atol: float, rtol: float | None) -> None:
        self.what = what
        self.against = against
        self.atol = atol
        self.rtol = rtol
        self.worst: dict[str, OutputParity] = {}
        self.batches: list[int] = []
        self.samples = 0

    def add(self, case: str, rows: int, reference: Outputs, candidate: Outputs, *, sample: bool = False) -> None:
        """Compare one case; :class:`RefusedError` naming the output and the difference when over tolerance."""
        found = differences(reference, candidate, self.what, case)
        ok = within(reference, candidate, self.atol, self.rtol or 0.0)
        for name, figures in found.items():
            old = self.worst.get(name)
            self.worst[name] = OutputParity(
                max_abs=max(figures.max_abs, old.max_abs if old else 0.0),
                max_rel=max(figures.max_rel, old.max_rel if old else 0.0),
            )
            if not ok[name]:
                bound = f"{self.atol:g}" + (f" + {self.rtol:g}·|ref|" if self.rtol else "")
                raise RefusedError(
                    f"{self.what} disagrees with the source ({self.against}) on output {name}: max abs difference "
                    f"{figures.max_abs:.3g} (relative {figures.max_rel:.3g}) on {case}, over the tolerance {bound}"
                )
        if sample:
            self.samples += rows
        else:
            self.batches.append(rows)

    def record(self) -> ParityRecord:
        return ParityRecord(
            against=self.against,
            tolerance_abs=self.atol,
            tolerance_rel=self.rtol,
            batches=tuple(self.batches),
            samples=self.samples,
            outputs=dict(self.worst),
        )
