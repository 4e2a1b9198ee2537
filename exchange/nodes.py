"""Provider nodes connected to the exchange, and the capacity they register.

A provider's node logs in with the provider's key and sends ``register_node``
with the CU per second it measured. The exchange keeps the nodes of each
connection and registers, for the account and the node's resource class, the
capacity of all its connected nodes together (a `SetCapacity` per instrument):

- spot: the CU the nodes deliver during one lease (``lease_seconds``), in lots;
- each listed future of the class still trading: the CU they deliver over its
  window, in lots.

Lots are rounded down. When a node's connection closes, its capacity leaves
with it; a future listed later gets the capacity of the nodes connected then.
Lowering capacity below what is already sold is allowed: no new sell is
accepted until enough is delivered (see the README, Money).

Each node's record (`NodeStats`: shards delivered and failed, FLOPs delivered
and the time they took) outlives its connection, so that a node that
reconnects keeps its reputation, and is published with it: ``reputation_bps``
is the share of its shards delivered, in basis points (10,000 before its
first shard), and ``delivered_cu_per_second`` the CU of its delivered shards
over the run time it reported for them (None before the first), to set
against the ``cu_per_second`` it registered. ``busy`` is how many shards it
runs now.

A node id names one live node of an account: a ``register_node`` whose id is
registered already by another connection of the account that is still open is
refused with ``NODE_ID_IN_USE`` (`NODE_CODES`), and the node registered first
keeps its capacity. The same connection may register its id again (to change
its CU/s).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from exchange.sessions import Session
from matching import Command, Engine, SetCapacity
from matching.config import MAX_QTY

__all__ = ["NODE_CODES", "Node", "NodeStats", "Nodes", "lots_of"]

SECOND = 1_000_000_000

NODE_CODES: dict[str, str] = {
    "NODE_ID_IN_USE": "another live connection of the account has registered "
    "a node with this id; give each node its own id",
}
"""The codes of ``register_node`` refusals beside the engine's and the wire's."""


@dataclass(slots=True)
class Node:
    """One registered node."""

    account: str
    node_id: str
    resource_class: str
    cu_per_second_milli: int
    model: str
    tiers: dict[str, dict[str, Any]]
    session: Session = field(repr=False)

    def public(self, stats: NodeStats, busy: int) -> dict[str, Any]:
        """What the REST API shows of the node."""
        return {
            "account": self.account,
            "node_id": self.node_id,
            "resource_class": self.resource_class,
            "cu_per_second": self.cu_per_second_milli / 1000,
            "model": self.model,
            "tiers": self.tiers,
            "busy": busy,
            "reputation": stats.public(),
        }


@dataclass(slots=True)
class NodeStats:
    """What a node delivered since the exchange started."""

    done: int = 0
    failed: int = 0
    flops: int = 0
    wall_ns: int = 0

    @property
    def reputation_bps(self) -> int:
        """The share of its shards delivered, basis points; 10,000 before any."""
        shards = self.done + self.failed
        return 10_000 if not shards else self.done * 10_000 // shards

    def public(self) -> dict[str, Any]:
        return {
            "shards_done": self.done,
            "shards_failed": self.failed,
            "flops_delivered": self.flops,
            "reputation_bps": self.reputation_bps,
            "delivered_cu_per_second": (
                None if not self.wall_ns else round(self.flops / self.wall_ns, 3)
            ),
        }


class Nodes:
    """The connected nodes, by (account, node id)."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[str, str], Node] = {}
        self._stats: dict[tuple[str, str], NodeStats] = {}
        self._busy: dict[tuple[str, str], int] = {}

    def register(self, node: Node) -> bool:
        """Register ``node``, or replace its own connection's earlier record;
        False (nothing changes) when another connection holds its id."""
        key = (node.account, node.node_id)
        held = self._nodes.get(key)
        if held is not None and held.session is not node.session:
            return False
        self._nodes[key] = node
        return True

    def get(self, key: tuple[str, str]) -> Node | None:
        return self._nodes.get(key)

    def of(self, account: str, resource_class: str) -> list[Node]:
        """The connected nodes of ``account`` serving ``resource_class``."""
        return [
            node
            for node in self._nodes.values()
            if node.account == account and node.resource_class == resource_class
        ]

    def stats(self, key: tuple[str, str]) -> NodeStats:
        """The record of node ``key`` (account, node id), kept across
        reconnections."""
        found = self._stats.get(key)
        if found is None:
            found = self._stats[key] = NodeStats()
        return found

    def reputable(
        self,
        resource_class: str,
        least_bps: int,
        excluding: Collection[tuple[str, str]] = (),
    ) -> tuple[str, ...]:
        """The accounts with a connected node of ``resource_class`` whose
        reputation is at least ``least_bps``, other than the nodes
        ``excluding``, in name order."""
        return tuple(
            sorted(
                {
                    node.account
                    for key, node in self._nodes.items()
                    if node.resource_class == resource_class
                    and key not in excluding
                    and self.stats(key).reputation_bps >= least_bps
                }
            )
        )

    def busy(self, node: Node) -> int:
        """How many shards ``node`` runs now."""
        return self._busy.get((node.account, node.node_id), 0)

    def busy_add(self, key: tuple[str, str], delta: int) -> None:
        self._busy[key] = max(0, self._busy.get(key, 0) + delta)

    def drop_session(self, session: object) -> set[tuple[str, str]]:
        """Forget the nodes of a closed connection; the (account, class) pairs
        whose capacity changed."""
        gone = [key for key, node in self._nodes.items() if node.session is session]
        changed = set()
        for key in gone:
            node = self._nodes.pop(key)
            changed.add((node.account, node.resource_class))
        return changed

    def classes(self) -> set[tuple[str, str]]:
        """Every (account, class) pair with a connected node."""
        return {(n.account, n.resource_class) for n in self._nodes.values()}

    def listing(self) -> list[dict[str, Any]]:
        return [
            self._nodes[key].public(self.stats(key), self._busy.get(key, 0))
            for key in sorted(self._nodes)
        ]

    def capacity_commands(
        self, engine: Engine, pairs: Iterable[tuple[str, str]]
    ) -> list[Command]:
        """The `SetCapacity` commands that register, for each (account, class)
        pair, the capacity of its connected nodes now."""
        commands: list[Command] = []
        for account, name in sorted(pairs):
            if engine.ledger.index(account) is None:
                continue
            milli = sum(
                n.cu_per_second_milli
                for n in self._nodes.values()
                if n.account == account and n.resource_class == name
            )
            commands += [
                SetCapacity(account, symbol, lots)
                for symbol, lots in lots_of(engine, name, milli).items()
            ]
        return commands


def lots_of(engine: Engine, resource_class: str, milli: int) -> dict[str, int]:
    """The lots ``milli`` thousandths of a CU/s deliver on each instrument of
    ``resource_class`` that sells capacity now: the spot instrument (one
    lease) and each future still trading (its window)."""
    rc = engine.classes.get(resource_class)
    if rc is None:
        return {}
    lots = {f"{rc.name}-SPOT": _lots(milli, rc.lease_seconds, rc.lot_cu)}
    for symbol, inst in sorted(engine.instruments.items()):
        window = inst.window
        if (
            window is None
            or inst.spec.resource_class != rc.name
            or window.stage != "trading"
        ):
            continue
        seconds = (window.end - window.start) // SECOND
        lots[symbol] = _lots(milli, seconds, rc.lot_cu)
    return lots


def _lots(milli_cu_per_second: int, seconds: int, lot_cu: int) -> int:
    """Whole lots of ``lot_cu`` CU delivered in ``seconds`` at that rate."""
    return min(milli_cu_per_second * seconds // (1000 * lot_cu), MAX_QTY)
