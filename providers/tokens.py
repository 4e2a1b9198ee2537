"""Token counts without torch: what the exchange needs to check a bill.

A report's FLOPs follow from each input's token count (see
:mod:`providers.metering`). :class:`TokenCounter` counts them exactly as the
node's runtime does (special tokens in, truncated to the model's 256), with the
model's own ``tokenizer.json`` and the ``tokenizers`` library alone: no torch,
no transformers, no weights loaded. It needs the ``node`` extra's files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from providers.metering import MINILM_L6
from providers.weights import model_dir

__all__ = ["TokenCounter"]


class TokenCounter:
    """Counts the tokens the runtime bills for each text."""

    def __init__(self, directory: Path | None = None) -> None:
        import tokenizers

        directory = model_dir() if directory is None else directory
        self._tokenizer = tokenizers.Tokenizer.from_file(
            str(directory / "tokenizer.json")
        )
        # The file pads and truncates to 128 for another use; the runtime
        # neither pads a row nor cuts it before the model's own maximum.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MINILM_L6.max_tokens)
        self.special = len(self._tokenizer.encode("").ids)
        """The tokens of a text with nothing in it (``[CLS]`` and ``[SEP]``):
        a text of no more has nothing the model reads."""

    def count(self, texts: Sequence[str]) -> list[int]:
        """The billed token count of each text."""
        encodings = self._tokenizer.encode_batch(list(texts))
        return [len(encoding.ids) for encoding in encodings]
