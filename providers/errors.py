"""The provider side's exceptions: one tree, named by what went wrong."""

from __future__ import annotations

__all__ = ["JobSpecError", "ModelFilesError", "ProviderError", "WeightsMismatchError"]


class ProviderError(Exception):
    """Base of every error the provider runtime raises on purpose."""


class ModelFilesError(ProviderError):
    """The model's files are missing: the ``node`` extra is not installed."""


class WeightsMismatchError(ModelFilesError):
    """The model's weights file is not the one the metering was published for."""


class JobSpecError(ProviderError, ValueError):
    """A job asks for something the runtime cannot do (unknown tier, bad budget)."""
