"""What one ``models add`` conversion works with: its steps, its folder, the seeded cases, and what it made.

The converters (:mod:`.converters`) and the source formats (:mod:`.formats`) take a
:class:`Conversion`; :mod:`.add` makes one per run. It sits below all three so that none of
them imports another's caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from contract.manifest import ModelEntry, ParityRecord

from .steps import Steps

Say = Callable[[str], None]
#: Artifact kind -> where it was made (None: the source itself is that artifact).
Produced = dict[str, Path | None]


@dataclass
class Conversion:
    """The state of one conversion: where it writes, how it runs steps, and what it made and how."""

    steps: Steps
    work: Path
    say: Say
    #: The seeded inputs every step runs on (``.npz``, :func:`services.jobs.save_cases`).
    cases: Path
    #: ``--pair``: the user's TF side (format key, path), used instead of a converter's
    pair_tf: tuple[str, Path] | None = None
    #: artifact kind -> the converter that made it (the parity gate's messages and the manifest name it)
    made_by: dict[str, str] = field(default_factory=dict)
    #: optional artifacts that could not be made faithfully: kind -> why
    missing: dict[str, str] = field(default_factory=dict)
    #: The parity gate, set by the add once the reference outputs are known: (kind, path) -> the record,
    #: or RefusedError naming the converter, the output and the difference.
    gate: Callable[[str, Path], ParityRecord] | None = None
    #: artifact kind -> its parity record, for each artifact that passed the gate
    parity: dict[str, ParityRecord] = field(default_factory=dict)

    def check(self, kind: str, path: Path) -> None:
        """Gate ``path`` as artifact ``kind``; RefusedError when it is not faithful."""
        assert self.gate is not None, "the gate is set before any artifact is made"
        self.parity[kind] = self.gate(kind, path)

    def contract(self, entry: ModelEntry) -> str:
        """The entry as the workers read it."""
        return entry.model_dump_json()
