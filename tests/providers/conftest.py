"""Tests of the provider runtime share one loaded model per test process."""

import pytest
import torch

from providers.model import EncoderModel, load_model


@pytest.fixture(scope="session")
def model() -> EncoderModel:
    # The tests run in parallel processes, one a core: a second torch thread
    # per process would only fight the other process for its core.
    torch.set_num_threads(1)
    # Loading takes seconds: every test that needs the model shares this one.
    return load_model()
