"""A dishonest ``cux node``: it runs its shards but bills each input twice.

Run as a script with ``cux node``'s flags; the tests check that the exchange
refuses its reports and pays it nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from exchange.cli import main
from providers import daemon
from providers.shards import ShardOutcome

honest = daemon.Node.payload


def inflated(self: daemon.Node, shard_id: int, outcome: ShardOutcome) -> Any:
    payload = honest(self, shard_id, outcome)
    payload["inputs"] = [{**i, "flops": 2 * i["flops"]} for i in payload["inputs"]]
    payload["flops"] = sum(i["flops"] for i in payload["inputs"])
    return payload


daemon.Node.payload = inflated  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(["node", *sys.argv[1:]]))
