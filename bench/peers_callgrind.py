"""Replay the first N operations of the peers' workload through one adapter,
untimed: the program `valgrind --tool=callgrind` counts instructions of.

Instructions an operation are the count of a run with N operations minus that
of a run with 0 (imports, set-up and loading the workload), divided by N; see
bench/README.md. The workload is the peers' harness's own (seed 42, 200,000
operations), generated once into ``--workload``.

    PYTHONPATH=. python -m bench.peers_callgrind bench.peers_adapter:CuxEngine 200000
"""

from __future__ import annotations

import argparse
import gc
import marshal
import os
import sys
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "shared" / "bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("engine", help="module:Class, or a name the harness knows")
    parser.add_argument("ops", type=int, help="operations to replay (0 for none)")
    parser.add_argument("--workload", default="/tmp/peers-workload.marshal")
    args = parser.parse_args()

    sys.path.insert(0, str(HARNESS))
    import peers_bench  # type: ignore[import-not-found]

    if not os.path.exists(args.workload):
        with open(args.workload, "wb") as f:
            marshal.dump(peers_bench.generate(200_000, 42), f)
    with open(args.workload, "rb") as f:
        ops = marshal.load(f)["ops"][: args.ops]

    engine = peers_bench._load_class(args.engine)()
    add, cancel, market = engine.add_limit, engine.cancel, engine.market
    gc.collect()
    for kind, oid, side, price, qty in ops:
        if kind == 0:
            add(oid, side, price, qty)
        elif kind == 1:
            cancel(oid)
        else:
            market(oid, side, qty)
    print("resting (bid, ask):", engine.resting())


if __name__ == "__main__":
    main()
