"""``loadtests tune``'s candidates and the tuned file it writes (the rounds themselves need a whole stack each).

``loadtests.tune`` imports Locust, which monkey-patches the interpreter with gevent: its answers are
read in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.utils.servers import REPO

_PROGRAM = """
import json
from loadtests.tune import STACKS, TRITON_CANDIDATES, candidates, tuned_file

def dump(settings):
    return None if settings is None else settings.model_dump()

rounds = [{k: dump(v) for k, v in candidates("digits", r).items()} for r in range(len(TRITON_CANDIDATES) + 1)]
chosen = candidates("digits", 2) | {"triton": None}
tuned = tuned_file("digits", 1, 50.0, chosen, {})
print(json.dumps({"stacks": list(STACKS), "rounds": rounds, "tuned": tuned.model_dump(mode="json")}))
"""


def _tune() -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_triton_is_tuned_over_instances_queue_delay_and_preferred_batch() -> None:
    found = _tune()
    assert found["stacks"] == ["torch", "torch_ort", "triton", "triton_ort", "tf"]
    shipped, *later = found["rounds"]
    assert shipped == dict.fromkeys(found["stacks"])
    tried = {tuple(r["triton"].values()) for r in later}
    assert len({t[0] for t in tried}) > 1  # instances
    assert len({t[1] for t in tried}) > 1  # max_queue_delay_microseconds
    assert len({t[2] for t in tried}) > 1  # preferred_batch_size
    assert set(later[0]["triton"]) == {"instances", "max_queue_delay_microseconds", "preferred_batch_size"}
    # the tuned file names Triton's models by their Triton names; a shipped choice is left out
    tuned = found["tuned"]
    assert set(tuned["triton"]) == {"digits_ort"}
    assert tuned["triton"]["digits_ort"] == found["rounds"][2]["triton_ort"]
    assert set(tuned["torchserve"]) == {"digits", "digits_ort"}
