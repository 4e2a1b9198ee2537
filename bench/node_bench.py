"""The provider node's model: CU/s, the tiers' cost and quality, and bucketing.

Run it by hand, never as a timed test:

    .venv/bin/python -m bench.node_bench                  # 3 runs a figure
    .venv/bin/python -m bench.node_bench --threads 1      # one torch thread
    .venv/bin/python -m bench.node_bench --runs 1 --quick # a quick look

Three tables, each figure the median of ``--runs`` timed runs after one
untimed warm-up (none with ``--runs 1``):

(a) tiers on the probe set (the 210 short sentences shipped in
    ``providers/data``): the CU billed and the wall time of a job at each tier
    against full depth, the CU/s delivered, and the quality the tier keeps
    (measured in the same run, as ``python -m providers.profile`` does);
(b) CU/s at each tier on a mixed workload: the probe sentences and 90 passages
    of 10 to 180 words cut from CPython's own documentation
    (``pydoc_data.topics``), seeded, in shuffled order;
(c) length bucketing against arrival order on that mixed workload at full
    depth, with the same batch limits: FLOPs computed (padding included)
    against FLOPs billed, and the wall time.

CU/s is billed FLOPs over wall time, tokenizing included: what a node can sell.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from providers.metering import cu
from providers.model import EncoderModel
from providers.probe import (
    ProbeSet,
    load_probe_set,
    mean_cosine,
    paraphrase_recall_at_1,
)
from providers.runtime import BATCH_ROWS, BATCH_TOKENS, JobResult, run_job
from providers.tiers import TIERS


@dataclass(frozen=True, slots=True)
class Timed:
    """A job's result and its median wall time over the runs, in seconds."""

    result: JobResult
    seconds: float

    @property
    def cu_per_s(self) -> float:
        return cu(self.result.report.flops) / self.seconds


def mixed_workload(
    sentences: Sequence[str], passages: int = 90, seed: int = 7
) -> list[str]:
    """Sentences and documentation passages of mixed length, shuffled."""
    import pydoc_data.topics

    rng = random.Random(seed)
    words = " ".join(
        pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)
    )
    words_list = words.split()
    texts = list(sentences)
    for _ in range(passages):
        length = rng.randint(10, 180)
        start = rng.randrange(len(words_list) - length)
        texts.append(" ".join(words_list[start : start + length]))
    rng.shuffle(texts)
    return texts


def timed(
    model: EncoderModel,
    texts: Sequence[str],
    runs: int,
    tier: str = "exact",
    bucketing: bool = True,
) -> Timed:
    """Run one job ``runs`` times (after a warm-up if more than once); keep the
    median wall time."""
    if runs > 1:
        run_job(model, texts, tier, bucketing=bucketing)
    results = [run_job(model, texts, tier, bucketing=bucketing) for _ in range(runs)]
    seconds = statistics.median(r.report.wall_ns for r in results) / 1e9
    return Timed(results[0], seconds)


def tier_table(model: EncoderModel, probe: ProbeSet, runs: int) -> list[str]:
    exact = timed(model, probe.sentences, runs)
    full = exact.result.embeddings.numpy()
    lines = [
        "| tier | layers | CU billed | CU vs exact | wall s | wall vs exact | CU/s "
        "| cosine to exact | R@1 | R@1 vs exact index |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, spec in TIERS.items():
        run = exact if name == "exact" else timed(model, probe.sentences, runs, name)
        vectors = run.result.embeddings.numpy()
        billed = cu(run.result.report.flops)
        lines.append(
            f"| {name} | {spec.layers} | {billed:.2f} "
            f"| {billed / cu(exact.result.report.flops):.3f} | {run.seconds:.3f} "
            f"| {run.seconds / exact.seconds:.3f} | {run.cu_per_s:.1f} "
            f"| {mean_cosine(vectors, full):.3f} "
            f"| {paraphrase_recall_at_1(probe, vectors):.3f} "
            f"| {paraphrase_recall_at_1(probe, vectors, full):.3f} |"
        )
    return lines


def throughput_table(model: EncoderModel, texts: Sequence[str], runs: int) -> list[str]:
    lines = ["| tier | CU billed | wall s | CU/s |", "|---|---:|---:|---:|"]
    for name in TIERS:
        run = timed(model, texts, runs, name)
        billed = cu(run.result.report.flops)
        lines.append(
            f"| {name} | {billed:.2f} | {run.seconds:.3f} | {run.cu_per_s:.1f} |"
        )
    return lines


def bucketing_table(model: EncoderModel, texts: Sequence[str], runs: int) -> list[str]:
    lines = [
        "| batches | CU billed | CU computed | computed / billed | wall s | CU/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, bucketing in (("arrival order", False), ("bucketed by length", True)):
        run = timed(model, texts, runs, bucketing=bucketing)
        report = run.result.report
        lines.append(
            f"| {label} | {cu(report.flops):.2f} | {cu(report.computed_flops):.2f} "
            f"| {report.computed_flops / report.flops:.2f} | {run.seconds:.3f} "
            f"| {run.cu_per_s:.1f} |"
        )
    return lines


def measure(model: EncoderModel, runs: int, quick: bool = False) -> list[str]:
    """All three tables as Markdown lines; ``quick`` shrinks the workloads."""
    probe = load_probe_set()
    if quick:
        texts = mixed_workload(probe.sentences[:30], passages=10)
    else:
        texts = mixed_workload(probe.sentences)
    tokens = [len(row) for row in model.tokenize(texts)]
    return [
        f"(a) tiers on the probe set ({len(probe.sentences)} sentences)",
        *tier_table(model, probe, runs),
        "",
        f"(b) CU/s by tier, mixed workload ({len(texts)} inputs, "
        f"{min(tokens)}-{max(tokens)} tokens, {sum(tokens)} in all)",
        *throughput_table(model, texts, runs),
        "",
        f"(c) bucketing at full depth, mixed workload (batches of at most "
        f"{BATCH_ROWS} rows and {BATCH_TOKENS} padded tokens)",
        *bucketing_table(model, texts, runs),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.node_bench")
    parser.add_argument("--runs", type=int, default=3, help="timed runs a figure")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--device", default=None, help="cpu or cuda (default: cuda if any)"
    )
    parser.add_argument("--quick", action="store_true", help="small workloads")
    args = parser.parse_args(argv)

    import torch

    from providers.model import load_model

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model = load_model(device=args.device)
    print(
        f"torch {torch.__version__} on {model.device}, {torch.get_num_threads()} "
        f"threads, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print("\n".join(measure(model, args.runs, args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
