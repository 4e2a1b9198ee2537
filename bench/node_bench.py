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
    against FLOPs billed, and the wall time;
(d) why tiers fix a depth: exits decided per input by how much successive
    layers agree, at several thresholds, on the probe set (not timed).

CU/s is billed FLOPs over wall time, tokenizing included: what a node can sell.
CU/CPU-s is billed FLOPs over the process's CPU time: with one torch thread
(``--threads 1``) it is what one core delivers, and it moves far less than
wall time when other work shares the machine.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from providers.metering import cu, input_flops
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
    """A job's result and its median wall and CPU times over the runs, in s."""

    result: JobResult
    seconds: float
    cpu_seconds: float

    @property
    def cu_per_s(self) -> float:
        return cu(self.result.report.flops) / self.seconds

    @property
    def cu_per_cpu_s(self) -> float:
        """CU per second of this process's CPU time: steadier on a busy machine."""
        return cu(self.result.report.flops) / self.cpu_seconds


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
    results, cpu = [], []
    for _ in range(runs):
        start = time.process_time()
        results.append(run_job(model, texts, tier, bucketing=bucketing))
        cpu.append(time.process_time() - start)
    seconds = statistics.median(r.report.wall_ns for r in results) / 1e9
    return Timed(results[0], seconds, statistics.median(cpu))


def tier_table(model: EncoderModel, probe: ProbeSet, runs: int) -> list[str]:
    exact = timed(model, probe.sentences, runs)
    full = exact.result.embeddings.numpy()
    lines = [
        "| tier | layers | CU billed | CU vs exact | wall s | wall vs exact | CU/s "
        "| CU/CPU-s | cosine to exact | R@1 | R@1 vs exact index |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, spec in TIERS.items():
        run = exact if name == "exact" else timed(model, probe.sentences, runs, name)
        vectors = run.result.embeddings.numpy()
        billed = cu(run.result.report.flops)
        lines.append(
            f"| {name} | {spec.layers} | {billed:.2f} "
            f"| {billed / cu(exact.result.report.flops):.3f} | {run.seconds:.3f} "
            f"| {run.seconds / exact.seconds:.3f} | {run.cu_per_s:.1f} "
            f"| {run.cu_per_cpu_s:.1f} | {mean_cosine(vectors, full):.3f} "
            f"| {paraphrase_recall_at_1(probe, vectors):.3f} "
            f"| {paraphrase_recall_at_1(probe, vectors, full):.3f} |"
        )
    return lines


def throughput_table(model: EncoderModel, texts: Sequence[str], runs: int) -> list[str]:
    lines = [
        "| tier | CU billed | wall s | CU/s | CU/CPU-s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in TIERS:
        run = timed(model, texts, runs, name)
        billed = cu(run.result.report.flops)
        lines.append(
            f"| {name} | {billed:.2f} | {run.seconds:.3f} | {run.cu_per_s:.1f} "
            f"| {run.cu_per_cpu_s:.1f} |"
        )
    return lines


def bucketing_table(model: EncoderModel, texts: Sequence[str], runs: int) -> list[str]:
    lines = [
        "| batches | CU billed | CU computed | computed / billed | wall s | CU/s "
        "| CU/CPU-s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, bucketing in (("arrival order", False), ("bucketed by length", True)):
        run = timed(model, texts, runs, bucketing=bucketing)
        report = run.result.report
        lines.append(
            f"| {label} | {cu(report.flops):.2f} | {cu(report.computed_flops):.2f} "
            f"| {report.computed_flops / report.flops:.2f} | {run.seconds:.3f} "
            f"| {run.cu_per_s:.1f} | {run.cu_per_cpu_s:.1f} |"
        )
    return lines


def criterion_table(
    model: EncoderModel, probe: ProbeSet, thresholds: Sequence[float]
) -> list[str]:
    """Exits by a criterion instead of a fixed depth, for comparison.

    An input exits after the first layer k >= 2 whose pooled embedding has a
    cosine of at least the threshold to layer k - 1's, else at full depth.
    """
    import numpy as np

    rows = model.tokenize(probe.sentences)
    layers = model.shape.layers
    by_depth = [
        model.embed_batch(rows, [depth] * len(rows))[0].cpu().numpy()
        for depth in range(layers + 1)
    ]
    full = by_depth[layers]
    full_cost = sum(input_flops(model.shape, len(row), layers) for row in rows)
    lines = [
        "| exit when successive layers agree to | CU vs exact | inputs exiting "
        "after layer 2/3/4/5/6 | cosine to exact | R@1 | R@1 vs exact index |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for threshold in thresholds:
        depths = []
        for i in range(len(rows)):
            agree = (
                k
                for k in range(2, layers + 1)
                if float(by_depth[k][i] @ by_depth[k - 1][i]) >= threshold
            )
            depths.append(next(agree, layers))
        vectors = np.stack([by_depth[d][i] for i, d in enumerate(depths)])
        cost = sum(
            input_flops(model.shape, len(row), d)
            for row, d in zip(rows, depths, strict=True)
        )
        counts = "/".join(str(depths.count(k)) for k in range(2, layers + 1))
        lines.append(
            f"| {threshold:.2f} | {cost / full_cost:.3f} | {counts} "
            f"| {mean_cosine(vectors, full):.3f} "
            f"| {paraphrase_recall_at_1(probe, vectors):.3f} "
            f"| {paraphrase_recall_at_1(probe, vectors, full):.3f} |"
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
        "",
        "(d) an exit criterion instead of fixed depths, on the probe set",
        *criterion_table(model, probe, (0.88, 0.90, 0.92, 0.95)),
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
