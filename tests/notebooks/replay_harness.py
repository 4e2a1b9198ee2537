"""A journal written by a real `cux serve`, for the replay analysis and notebook.

`server_journal` (a session fixture; import it into a test module to use it)
starts ``cux serve`` with the end-to-end tests' market (`server_harness`), with
a snapshot every 3 commands, and plays a known flow on ``cpu-SPOT`` over the
websocket, each request answered before the next is sent:

1. the operator moves ``cpu-SPOT`` to ``pre_open``;
2. bob sells 5 at 1000, carol sells 3 at 1010, alice bids 4 at 1010 and 2 at
   990 (the book crosses: nothing trades in a call phase);
3. the operator moves it to ``continuous``: the opening auction trades 4 at
   1000 (most volume at 1000 and 1010; the smaller surplus, 1 sell lot left
   over, at 1000): alice buys bob's 4;
4. alice buys 2 at 1010: 1 from bob at 1000, then 1 from carol at 1010;
5. bob offers 3 at 1005 and cancels them;
6. alice buys 1 at 1010 IOC: from carol at 1010;
7. alice cancels her bid at 990; left on the book: carol's 1 at 1010.

It then reads the server's sequence number and state hash from
``/health?state_hash=1`` and stops the server.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from server_harness import ServerProcess, connected, write_config

SYMBOL = "cpu-SPOT"


@dataclass(frozen=True)
class ServerJournal:
    """A data folder a server wrote, and what the server said of it at the end.

    Attributes:
        data: the data folder (``journal/``, ``snapshots/``).
        seq: the server's last sequence number.
        state_hash: the server engine's state hash at ``seq``.
    """

    data: Path
    seq: int
    state_hash: str


def place(side: str, qty: int, price: int, **extra: Any) -> dict[str, Any]:
    return {"symbol": SYMBOL, "side": side, "qty": qty, "price": price, **extra}


async def play(url: str) -> None:
    """The flow of the module docstring; every request must be acknowledged."""
    async with (
        connected(url, "operator") as operator,
        connected(url, "alice") as alice,
        connected(url, "bob") as bob,
        connected(url, "carol") as carol,
    ):

        async def ack(client: Any, op: str, **fields: Any) -> dict[str, Any]:
            reply: dict[str, Any] = await client.request(op, **fields)
            assert reply["type"] == "ack", reply
            return reply

        await ack(operator, "set_phase", symbol=SYMBOL, phase="pre_open")
        await ack(bob, "place", **place("sell", 5, 1000))
        await ack(carol, "place", **place("sell", 3, 1010))
        await ack(alice, "place", **place("buy", 4, 1010))
        low_bid = await ack(alice, "place", **place("buy", 2, 990))
        await ack(operator, "set_phase", symbol=SYMBOL, phase="continuous")
        await ack(alice, "place", **place("buy", 2, 1010))
        offer = await ack(bob, "place", **place("sell", 3, 1005))
        await ack(bob, "cancel", order_id=offer["order_id"])
        await ack(alice, "place", **place("buy", 1, 1010, tif="IOC"))
        await ack(alice, "cancel", order_id=low_bid["order_id"])


def write_server_journal(folder: Path) -> ServerJournal:
    """Run a server in ``folder``, play the flow, stop it; what it wrote."""
    data = folder / "data"
    config = write_config(folder, snapshot_every=3)
    with ServerProcess(config, data) as server:
        asyncio.run(play(server.url))
        health = server.get("/health?state_hash=1").body
    return ServerJournal(data, health["seq"], health["state_hash"])


@pytest.fixture(scope="session")
def server_journal(tmp_path_factory: pytest.TempPathFactory) -> ServerJournal:
    return write_server_journal(tmp_path_factory.mktemp("replay-server"))
