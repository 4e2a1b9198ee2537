"""Derive the GPU price file that cux ships from the raw price tracker data.

The raw data (``gpu-prices/*.jsonl`` in the shared data folder, one snapshot of
GPU rental offers a line, at irregular times about 30 minutes apart, with gaps
of up to a few hours) is too big to ship. This script writes one price path per
GPU model on a regular grid, small enough to ship with the project:

- the grid: every 30 minutes (UTC, on :00 and :30), from the first grid time at
  or after the first snapshot to the last grid time at or before the last one;
- each grid point takes the last snapshot at or before it (last observation
  carried forward): a price is what the market showed then, never a blend;
- prices are the snapshot's percentiles across all listed offers (``min``,
  ``p25``, ``median``, ``p75``, ``p90``) in whole US cents per GPU-hour (the
  raw data is in dollars with two decimals, so nothing is lost).

Run it from the repository root (it reads the shared data beside the
repository by default)::

    .venv/bin/python scripts/derive_gpu_prices.py
    .venv/bin/python scripts/derive_gpu_prices.py --source ../shared/data/gpu-prices \
        --out clients/data/gpu_prices.json

The same input gives the same bytes. The licence of the source travels with the
output (``clients/data/LICENSE``, ``clients/data/README.md``).
"""

from __future__ import annotations

import argparse
import bisect
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

GPUS = ("A100_80GB_SXM4", "H100_80GB_SXM5", "H200_141GB", "B200_180GB")
"""The GPU models shipped: one of each generation, the rest stay in the source."""

STATISTICS = ("min", "p25", "median", "p75", "p90")
"""The percentiles shipped, of the prices of all offers listed at a snapshot."""

STEP = timedelta(minutes=30)

SOURCE = "tugot17/gpu-price-tracker"
SOURCE_COMMIT = "718a831"


def read_snapshots(path: Path) -> list[tuple[datetime, dict[str, int]]]:
    """A raw file's snapshots, in time order: the time and the cents per
    GPU-hour of each statistic."""
    snapshots = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        when = datetime.fromisoformat(row["timestamp"]).astimezone(UTC)
        stats = row["price_stats"]
        snapshots.append((when, {s: cents(stats[s]) for s in STATISTICS}))
    snapshots.sort(key=lambda snapshot: snapshot[0])
    return snapshots


def cents(usd: float) -> int:
    """Whole cents of a dollar amount that has at most two decimals."""
    value = Decimal(str(usd)) * 100
    if value != value.to_integral_value():
        raise ValueError(f"{usd} USD is not a whole number of cents")
    return int(value)


def grid(first: datetime, last: datetime) -> list[datetime]:
    """Every half hour from the first one at or after ``first`` to the last one
    at or before ``last``."""
    start = first.replace(minute=0, second=0, microsecond=0)
    while start < first:
        start += STEP
    points = []
    while start <= last:
        points.append(start)
        start += STEP
    return points


def resample(
    snapshots: list[tuple[datetime, dict[str, int]]], points: list[datetime]
) -> tuple[dict[str, list[int]], int]:
    """Each statistic at every grid point (the last snapshot at or before it),
    and how many points had a snapshot within the half hour before them."""
    times = [when for when, _ in snapshots]
    series: dict[str, list[int]] = {s: [] for s in STATISTICS}
    fresh = 0
    for point in points:
        index = bisect.bisect_right(times, point) - 1
        if index < 0:
            raise ValueError(f"no snapshot at or before {point}")
        when, stats = snapshots[index]
        fresh += point - when < STEP
        for statistic in STATISTICS:
            series[statistic].append(stats[statistic])
    return series, fresh


def derive(source: Path) -> dict[str, Any]:
    """The shipped document, from the folder of raw files."""
    raw = {gpu: read_snapshots(source / f"{gpu}.jsonl") for gpu in GPUS}
    first = max(snapshots[0][0] for snapshots in raw.values())
    last = min(snapshots[-1][0] for snapshots in raw.values())
    points = grid(first, last)

    gpus: dict[str, Any] = {}
    for gpu, snapshots in raw.items():
        series, fresh = resample(snapshots, points)
        gpus[gpu] = {"snapshots": len(snapshots), "fresh_points": fresh, **series}
    return {
        "source": f"{SOURCE} (commit {SOURCE_COMMIT}), MIT licence: see LICENSE",
        "unit": "US cents per GPU-hour",
        "start": points[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "step_seconds": int(STEP.total_seconds()),
        "points": len(points),
        "statistics": list(STATISTICS),
        "method": "the last snapshot at or before each grid time; percentiles of "
        "the prices of all offers listed in that snapshot",
        "gpus": gpus,
    }


def dump(document: dict[str, Any]) -> str:
    """JSON with one line per series, so that a diff shows what changed."""
    lines = ["{"]
    head = [k for k in document if k != "gpus"]
    for key in head:
        lines.append(f"  {json.dumps(key)}: {json.dumps(document[key])},")
    lines.append('  "gpus": {')
    gpus = list(document["gpus"].items())
    for g, (gpu, entry) in enumerate(gpus):
        lines.append(f"    {json.dumps(gpu)}: {{")
        items = list(entry.items())
        for i, (key, value) in enumerate(items):
            comma = "," if i < len(items) - 1 else ""
            text = json.dumps(value, separators=(",", ":"))
            lines.append(f"      {json.dumps(key)}: {text}{comma}")
        lines.append("    }" + ("," if g < len(gpus) - 1 else ""))
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=ROOT.parent / "shared" / "data" / "gpu-prices",
        help="the folder of raw *.jsonl files (default: ../shared/data/gpu-prices)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "clients" / "data" / "gpu_prices.json",
        help="where to write (default: clients/data/gpu_prices.json)",
    )
    args = parser.parse_args(argv)
    text = dump(derive(args.source))
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
