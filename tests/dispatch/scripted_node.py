"""A node that misbehaves on purpose, speaking the websocket protocol itself.

Run as a script with ``cux node``'s flags (those of
`dispatch_harness.start_node`; it reads ``--exchange``, ``--key``,
``--secret``, ``--class``, ``--node-id``, ``--max-cu-per-second`` and
``--heartbeat-seconds`` and ignores the rest) and these of its own:

- ``--mode``: what it does with a shard —
  ``silent``: takes it and goes quiet, the connection left open: it stops
  pinging and stops reading, so it never answers the server's websocket pings
  either (a node that hangs);
  ``sit``: takes it and never answers, while it keeps pinging and reading (a
  node that stays healthy but passes the shard's deadline);
  ``refuse``: hands it back at once with ``shard_failed``.
- ``--lots``, ``--price`` and ``--orders``: it quotes that many lots at that
  price (µcr per lot) on the class's spot book, as that many GTC sells (one by
  default; none for 0 lots), and never re-quotes.

It logs in with ``cancel_on_disconnect`` (its quote leaves with its
connection), registers ``--max-cu-per-second`` as its capacity, and prints one
line per event to stdout (``quoted``, ``shard N``, ``cancelled N: reason``) for
the tests to read.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import sys
from typing import Any

import aiohttp


def _options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--class", dest="resource_class", required=True)
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--max-cu-per-second", type=float, default=1.0)
    parser.add_argument("--heartbeat-seconds", type=float, default=0.5)
    parser.add_argument("--mode", choices=["silent", "sit", "refuse"], required=True)
    parser.add_argument("--lots", type=int, required=True)
    parser.add_argument("--price", type=int, default=1000)
    parser.add_argument("--orders", type=int, default=1)
    options, _ = parser.parse_known_args(argv)
    return options


def say(line: str) -> None:
    print(line, flush=True)


class ScriptedNode:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.ids = itertools.count(1)
        self.quiet = asyncio.Event()  # set: stop pinging and reading

    async def run(self) -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(self.options.exchange, autoping=True) as ws,
        ):
            hello = json.loads((await ws.receive()).data)
            await self.request(ws, "login", **self.login(hello["nonce"]))
            o = self.options
            await self.request(
                ws,
                "register_node",
                node_id=o.node_id,
                resource_class=o.resource_class,
                cu_per_second_milli=round(o.max_cu_per_second * 1000),
                model="all-MiniLM-L6-v2",
            )
            if o.lots:
                await self.quote(ws)
            pinger = asyncio.create_task(self.ping(ws))
            try:
                await self.read(ws)
            finally:
                pinger.cancel()

    async def quote(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        o = self.options
        # ``--orders`` sells of near-equal size: a buy that takes several of
        # them makes as many trades, so as many leases.
        sizes = [o.lots // o.orders + (k < o.lots % o.orders) for k in range(o.orders)]
        for k, qty in enumerate(sizes):
            await self.request(
                ws,
                "place",
                symbol=f"{o.resource_class}-SPOT",
                side="sell",
                type="limit",
                price=o.price,
                qty=qty,
                tif="GTC",
                client_order_id=f"{o.node_id}.{k + 1}",
            )
        say(f"quoted {o.lots} lots at {o.price} in {o.orders} orders")

    def login(self, nonce: str) -> dict[str, Any]:
        signature = hmac.new(
            self.options.secret.encode(), nonce.encode(), hashlib.sha256
        ).hexdigest()
        return {
            "key": self.options.key,
            "signature": signature,
            "cancel_on_disconnect": True,
        }

    async def request(
        self, ws: aiohttp.ClientWebSocketResponse, op: str, **fields: Any
    ) -> dict[str, Any]:
        """Send a request and read until its answer (only before the loop)."""
        rid = next(self.ids)
        await ws.send_str(json.dumps({"op": op, "id": rid, **fields}))
        while True:
            message = json.loads((await ws.receive()).data)
            if message.get("id") == rid:
                if message["type"] == "error":
                    raise SystemExit(f"{op} refused: {message}")
                return message  # type: ignore[no-any-return]

    async def ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not self.quiet.is_set():
            await asyncio.sleep(self.options.heartbeat_seconds)
            if not self.quiet.is_set():
                await ws.send_str(json.dumps({"op": "ping", "id": next(self.ids)}))

    async def read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            kind = message.get("type")
            if kind == "shard":
                await self.on_shard(ws, message)
            elif kind == "shard_cancelled":
                say(f"cancelled {message['shard_id']}: {message['reason']}")
        say("connection closed")

    async def on_shard(
        self, ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]
    ) -> None:
        shard_id = message["shard_id"]
        say(f"shard {shard_id}: {len(message['inputs'])} inputs")
        mode = self.options.mode
        if mode == "refuse":
            await ws.send_str(
                json.dumps(
                    {
                        "op": "shard_failed",
                        "id": next(self.ids),
                        "shard_id": shard_id,
                        "reason": "scripted refusal",
                    }
                )
            )
        elif mode == "silent":
            # No more pings, no more reads (so no pongs): the connection stays
            # open, and the node is never heard from again.
            self.quiet.set()
            say("silent")
            await asyncio.Event().wait()


def main(argv: list[str]) -> int:
    asyncio.run(ScriptedNode(_options(argv)).run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
