"""The manifest's typed contract: what it accepts, and the one-line reasons it refuses the rest."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contract.manifest import Manifest, ModelEntry, TensorSpec

X = TensorSpec(name="x", shape=(3,))
Y = TensorSpec(name="y", shape=(1,))


def _entry(**kw: object) -> ModelEntry:
    values: dict[str, object] = {"name": "m", "inputs": (X,), "outputs": (Y,), "max_batch": 4}
    values.update(kw)
    return ModelEntry.model_validate(values)


def test_dynamic_axes_declare_a_maximum() -> None:
    seq = TensorSpec(name="ids", dtype="int64", shape=(-1, 4), max_shape=(128, 4), value_range=(0, 30521))
    assert seq.dynamic
    assert seq.largest == (128, 4)
    assert [seq.fits(s) for s in ((1, 4), (128, 4), (129, 4), (0, 4), (2, 5), (2,))] == [True, True] + [False] * 4
    assert seq.shape_text() == "[≤128, 4]"
    scalar = TensorSpec(name="length", dtype="int64", shape=())
    assert scalar.fits(())
    assert scalar.shape_text() == "[]"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "ids", "shape": [-1]}, "dynamic axes [0] need a declared maximum"),
        ({"name": "ids", "shape": [-1], "max_shape": [4, 2]}, "has another rank than shape"),
        ({"name": "ids", "shape": [3], "max_shape": [4]}, "max_shape[0] = 4 does not fit shape[0] = 3"),
        ({"name": "ids", "shape": [0]}, "has an axis that is neither -1 nor >= 1"),
        ({"name": "1x", "shape": [1]}, "String should match pattern"),
        ({"name": "x", "shape": [1], "dtype": "string"}, "Input should be 'float32', 'float16', 'int64', 'int32'"),
        ({"name": "x", "shape": [1], "value_range": [2, 1]}, "value_range 2.0..1.0 is empty"),
        ({"name": "x", "shape": [1], "dtype": "int64", "value_range": [0, 1.5]}, "must be whole numbers"),
        ({"name": "x", "shape": [1], "dtype": "bool", "value_range": [0, 1]}, "a bool tensor takes no value_range"),
    ],
)
def test_a_bad_tensor_is_refused_with_its_reason(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        TensorSpec.model_validate(spec)
    assert message in str(info.value)


def test_models_have_unique_tensor_names_and_valid_names() -> None:
    with pytest.raises(ValidationError, match="tensor names repeat"):
        _entry(inputs=(X, X))
    with pytest.raises(ValidationError, match="String should match pattern"):
        _entry(name="My-Net")
    with pytest.raises(ValidationError, match="at least 1 item"):
        _entry(outputs=())
    with pytest.raises(ValidationError, match="named 'm'"):
        Manifest(models={"other": _entry()})


def test_the_contract_part_ignores_artifacts_and_figures() -> None:
    entry = _entry()
    assert entry.contract() == _entry(metrics={"heldout_accuracy": 1.0}).contract()
    assert entry.contract() != _entry(max_batch=5).contract()
    assert entry.input("x") == X
    with pytest.raises(KeyError, match="model m has no input 'z'; inputs: x"):
        entry.input("z")
    with pytest.raises(KeyError, match="model 'n' is not in the manifest; known: m"):
        Manifest(models={"m": entry}).model("n")
