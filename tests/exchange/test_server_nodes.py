"""`cux serve` end to end: provider nodes register the capacity they measured."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from server_harness import ServerProcess, connected, write_config

CU_MILLI = 25_000
"""25 CU/s: 7,500 CU in a 300-second lease, 75 lots of 100 CU."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("nodes")
    with ServerProcess(write_config(folder), folder / "data") as server:
        yield server


def register(node_id: str = "n1", **fields: Any) -> dict[str, Any]:
    """The fields of a register_node request for a 25 CU/s cpu node."""
    return {
        "node_id": node_id,
        "resource_class": "cpu",
        "cu_per_second_milli": CU_MILLI,
        "model": "all-MiniLM-L6-v2",
        "tiers": {"exact": {"cu_fraction": 1.0}},
        **fields,
    }


async def test_a_node_registers_the_capacity_of_one_lease_in_lots(
    server: ServerProcess,
) -> None:
    async with connected(server.url) as node, connected(server.url) as trader:
        await node.login("carol")
        await trader.login("carol")

        ack = await node.request("register_node", **register())
        too_many = await trader.request(
            "place", symbol="cpu-SPOT", side="sell", qty=76, price=1000
        )
        fits = await trader.request(
            "place", symbol="cpu-SPOT", side="sell", qty=75, price=1000
        )
        listed = json.loads(
            urllib.request.urlopen(server.http + "/api/v1/nodes").read()
        )
        await trader.request("cancel_all")

    assert ack == {
        "type": "ack",
        "id": 2,
        "capacity": {"cpu-SPOT": 75},
        "node_capacity": {"cpu-SPOT": 75},
    }
    assert too_many["code"] == "INSUFFICIENT_CAPACITY"
    assert fits["type"] == "ack"
    assert listed["nodes"] == [
        {
            "account": "carol",
            "node_id": "n1",
            "resource_class": "cpu",
            "cu_per_second": 25.0,
            "model": "all-MiniLM-L6-v2",
            "tiers": {"exact": {"cu_fraction": 1.0}},
            "busy": 0,
            "reputation": {
                "shards_done": 0,
                "shards_failed": 0,
                "flops_delivered": 0,
                "reputation_bps": 10_000,
                "delivered_cu_per_second": None,
            },
        }
    ]


async def test_a_second_node_of_an_account_adds_its_capacity_and_learns_its_own(
    server: ServerProcess,
) -> None:
    async with connected(server.url) as first, connected(server.url) as second:
        await first.login("carol")
        await second.login("carol")

        one = await first.request("register_node", **register("a"))
        two = await second.request(
            "register_node", **register("b", cu_per_second_milli=2 * CU_MILLI)
        )

    assert (one["capacity"], one["node_capacity"]) == (
        {"cpu-SPOT": 75},
        {"cpu-SPOT": 75},
    )
    assert (two["capacity"], two["node_capacity"]) == (
        {"cpu-SPOT": 225},
        {"cpu-SPOT": 150},
    )


async def test_a_nodes_capacity_leaves_with_its_connection(
    server: ServerProcess,
) -> None:
    async with connected(server.url) as trader:
        await trader.login("bob")
        async with connected(server.url) as node:
            await node.login("bob")
            await node.request("register_node", **register(node_id="b1"))
            await node.request(
                "register_node", **register(node_id="b2", cu_per_second_milli=5_000)
            )
        # The node's connection closed: its capacity is registered again.
        for _ in range(50):
            reply = await trader.request(
                "place", symbol="cpu-SPOT", side="sell", qty=1, price=1000
            )
            if reply["type"] == "error":
                break
            await trader.request("cancel", order_id=reply["order_id"])
            await asyncio.sleep(0.05)

    assert reply["code"] == "INSUFFICIENT_CAPACITY"


async def test_only_providers_register_nodes_of_classes_that_exist(
    server: ServerProcess,
) -> None:
    async with connected(server.url) as client:
        before = await client.request("register_node", **register())
        await client.login("alice")
        consumer = await client.request("register_node", **register())
        async with connected(server.url) as other:
            await other.login("carol")
            unknown = await other.request(
                "register_node", **register(resource_class="tpu")
            )
            bad = await other.request(
                "register_node", **register(cu_per_second_milli=0)
            )

    assert before["code"] == "NOT_LOGGED_IN"
    assert consumer["code"] == "ROLE_NOT_ALLOWED"
    assert unknown["code"] == "UNKNOWN_CLASS"
    assert bad["code"] == "INVALID_FIELD"


def listed_nodes(server: ServerProcess, account: str) -> list[tuple[str, float]]:
    body = json.loads(urllib.request.urlopen(server.http + "/api/v1/nodes").read())
    return [
        (n["node_id"], n["cu_per_second"])
        for n in body["nodes"]
        if n["account"] == account
    ]


async def test_a_node_id_in_use_on_another_live_connection_is_refused_and_kept(
    server: ServerProcess,
) -> None:
    async with connected(server.url) as first:
        await first.login("carol")
        await first.request("register_node", **register("dup"))
        async with connected(server.url) as second:
            await second.login("carol")
            refused = await second.request(
                "register_node", **register("dup", cu_per_second_milli=5_000)
            )
        # The refused connection closed: the first node is still registered,
        # and may register its own id again.
        again = await first.request(
            "register_node", **register("dup", cu_per_second_milli=30_000)
        )
        kept = listed_nodes(server, "carol")
    async with connected(server.url) as third:
        await third.login("carol")
        freed = await third.request("register_node", **register("dup"))

    assert refused["code"] == "NODE_ID_IN_USE"
    assert "give each node its own id" in refused["message"]
    assert again["type"] == "ack"
    assert kept == [("dup", 30.0)]
    assert freed["type"] == "ack"
