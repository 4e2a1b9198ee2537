"""Fixtures shared across the test tree.

They live here, at the root, rather than in ``tests/providers/conftest.py``:
mypy checks ``tests/`` as top-level modules, and a second module named
``conftest`` beside ``tests/exchange/conftest.py`` would stop it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# The tests' helper modules are imported by their plain names (``harness``,
# ``server_harness``, ``fake_exchange``), as mypy sees them: put their folders
# on the path for every test, whichever folder it is in.
for _folder in ("matching", "exchange", "providers", "dispatch"):
    _path = str(Path(__file__).resolve().parent / "tests" / _folder)
    if _path not in sys.path:
        sys.path.append(_path)

if TYPE_CHECKING:
    from providers.model import EncoderModel


@pytest.fixture(scope="session")
def model() -> EncoderModel:
    """all-MiniLM-L6-v2, loaded once per test process (it takes seconds)."""
    # Imported here: only the tests that ask for the model pay for torch.
    import torch

    from providers.model import load_model

    # The tests run in parallel processes, one a core: a second torch thread
    # per process would only fight the other process for its core.
    torch.set_num_threads(1)
    return load_model()
