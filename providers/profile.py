"""The quality profile: what each tier saves and what it keeps, measured.

``python -m providers.profile`` runs the probe set (:mod:`providers.probe`)
through the model at every tier and writes ``providers/data/quality_profile.json``,
which ships with cux and which a node publishes to the exchange. For each tier:

- ``cu_fraction``: its FLOPs on the probe set over the full-depth FLOPs;
- ``mean_cosine_to_exact`` and ``min_cosine_to_exact``: how close its
  embeddings stay to the full-depth ones;
- ``recall_at_1``: paraphrase retrieval with every sentence embedded at the tier;
- ``recall_at_1_against_exact``: queries embedded at the tier, searched in an
  index embedded at full depth (a consumer who saves on queries only).

The numbers are measured, never edited by hand; rerun the command after any
change to the model, the runtime or the tiers (a test checks the shipped file
against a fresh measurement).

Reading a profile (:func:`load_profile`) needs no torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from providers.probe import (
    ProbeSet,
    load_probe_set,
    mean_cosine,
    paraphrase_recall_at_1,
)
from providers.tiers import TIERS

if TYPE_CHECKING:
    from providers.model import EncoderModel

__all__ = [
    "PROFILE_PATH",
    "QualityProfile",
    "TierQuality",
    "load_profile",
    "main",
    "measure_profile",
]

PROFILE_PATH = Path(__file__).resolve().parent / "data" / "quality_profile.json"
_DIGITS = 4


class TierQuality(msgspec.Struct, frozen=True):
    """One tier's measured cost and quality on the probe set."""

    tier: str
    layers: int
    flops: int
    cu_fraction: float
    mean_cosine_to_exact: float
    min_cosine_to_exact: float
    recall_at_1: float
    recall_at_1_against_exact: float


class QualityProfile(msgspec.Struct, frozen=True):
    """The profile a node publishes: the model, the probe and every tier."""

    model: str
    weights_sha256: str
    probe_sha256: str
    probe_sentences: int
    probe_queries: int
    probe_tokens: int
    measured_on: str
    tiers: list[TierQuality]


def measure_profile(model: EncoderModel, probe: ProbeSet) -> QualityProfile:
    """Run the probe set at every tier and measure what each keeps."""
    import torch

    from providers.runtime import run_job
    from providers.weights import WEIGHTS_SHA256

    exact = run_job(model, probe.sentences, "exact")
    full = exact.embeddings.numpy()
    tiers = []
    for name, spec in TIERS.items():
        result = exact if name == "exact" else run_job(model, probe.sentences, name)
        vectors = result.embeddings.numpy()
        cosines = (result.embeddings * exact.embeddings).sum(dim=1)
        tiers.append(
            TierQuality(
                tier=name,
                layers=spec.layers,
                flops=result.report.flops,
                cu_fraction=_round(result.report.flops / exact.report.flops),
                mean_cosine_to_exact=_round(mean_cosine(vectors, full)),
                min_cosine_to_exact=_round(float(cosines.min())),
                recall_at_1=_round(paraphrase_recall_at_1(probe, vectors)),
                recall_at_1_against_exact=_round(
                    paraphrase_recall_at_1(probe, vectors, full)
                ),
            )
        )
    return QualityProfile(
        model="sentence-transformers/all-MiniLM-L6-v2",
        weights_sha256=WEIGHTS_SHA256,
        probe_sha256=probe.sha256,
        probe_sentences=len(probe.sentences),
        probe_queries=probe.queries,
        probe_tokens=sum(plan.tokens for plan in exact.report.inputs),
        measured_on=f"torch {torch.__version__} on {model.device.type}",
        tiers=tiers,
    )


def load_profile(path: Path = PROFILE_PATH) -> QualityProfile:
    """Read a quality profile (the shipped one by default)."""
    return msgspec.json.decode(path.read_bytes(), type=QualityProfile)


def format_profile(profile: QualityProfile) -> str:
    """The profile as a plain-text table."""
    lines = [
        f"{'tier':<9} {'layers':>6} {'CU':>6} {'cos mean':>8} {'cos min':>8} "
        f"{'R@1':>6} {'R@1 vs exact':>12}"
    ]
    for t in profile.tiers:
        lines.append(
            f"{t.tier:<9} {t.layers:>6} {t.cu_fraction:>6.3f} "
            f"{t.mean_cosine_to_exact:>8.3f} {t.min_cosine_to_exact:>8.3f} "
            f"{t.recall_at_1:>6.3f} {t.recall_at_1_against_exact:>12.3f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the quality profile and write it (``--out``, default the shipped one)."""
    parser = argparse.ArgumentParser(
        prog="python -m providers.profile",
        description="Measure each quality tier on the probe set shipped with cux.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=PROFILE_PATH,
        help=f"where to write the profile (default: {PROFILE_PATH})",
    )
    parser.add_argument(
        "--device", default=None, help="cpu or cuda (default: cuda when available)"
    )
    args = parser.parse_args(argv)

    from providers.model import load_model

    profile = measure_profile(load_model(device=args.device), load_probe_set())
    args.out.write_bytes(msgspec.json.format(msgspec.json.encode(profile)) + b"\n")
    print(format_profile(profile))
    print(f"written to {args.out}")
    return 0


def _round(value: float) -> float:
    return round(value, _DIGITS)


if __name__ == "__main__":
    sys.exit(main())
