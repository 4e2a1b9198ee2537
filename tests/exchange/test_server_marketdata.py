"""`cux serve` end to end: book, trades, candles, auction and phase channels.

The tests share a server; each uses an instrument of its own (a desk, see
`desk_config`), except the random burst, which trades ``cpu-SPOT`` among alice,
bob and carol.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import pytest
from server_harness import (
    BookMirror,
    Client,
    ServerProcess,
    book_checksum,
    connected,
    desk_config,
    write_config,
)

from matching.codes import CODES, Code

EXTRA = "".join(desk_config(name) for name in ("window", "tape", "auction", "phase"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("marketdata")
    with ServerProcess(write_config(folder, extra=EXTRA), folder / "data") as server:
        yield server


def place(symbol: str, side: str, qty: int, price: int) -> dict[str, Any]:
    return {"op": "place", "symbol": symbol, "side": side, "qty": qty, "price": price}


def mirror(messages: list[dict[str, Any]], depth: int | None = None) -> BookMirror:
    """A mirror of the book channel at ``depth`` built from ``messages``."""
    book = BookMirror()
    for message in messages:
        if message.get("depth") == depth:
            book.apply(message)
    return book


async def barrier(client: Client) -> None:
    """Wait until everything published before now has reached ``client``: a
    read goes through the sequencer, so its answer comes after them."""
    await client.request("balance")


# -- the book channel -------------------------------------------------------------


async def trade_randomly(
    client: Client, rng: random.Random, sides: list[str], rounds: int
) -> None:
    """Rounds of pipelined places, cancels and amends on ``cpu-SPOT``; the
    cancels and amends pick the orders the previous rounds placed."""
    mine: list[str] = []
    for _ in range(rounds):
        requests: list[dict[str, Any]] = []
        for _ in range(40):
            roll = rng.random()
            if mine and roll < 0.2:
                requests.append({"op": "cancel", "order_id": rng.choice(mine)})
            elif mine and roll < 0.35:
                order_id = rng.choice(mine)
                requests.append(
                    {"op": "amend", "order_id": order_id, "qty": rng.randint(1, 9)}
                    if rng.random() < 0.5
                    else {"op": "amend", "order_id": order_id,
                          "price": rng.randint(990, 1010)}
                )  # fmt: skip
            else:
                side = rng.choice(sides)
                low = 985 if side == "buy" else 995
                price = rng.randint(low, low + 20)
                requests.append(place("cpu-SPOT", side, rng.randint(1, 9), price))
        replies = await client.request_many(requests)
        mine += [
            r["order_id"] for r in replies if r["type"] == "ack" and "order_id" in r
        ]


async def test_a_client_rebuilds_the_rest_book_from_snapshot_and_updates(
    server: ServerProcess,
) -> None:
    """Several clients trade at random; watchers that subscribed before and in
    the middle of it, to the whole book and to its top 10, rebuild exactly
    what REST shows at the same sequence number, checking every checksum."""
    rng = random.Random(20261203)
    async with (
        connected(server.url, "operator") as early,
        connected(server.url, "operator") as late,
        connected(server.url, "alice") as alice,
        connected(server.url, "bob") as bob,
        connected(server.url, "carol") as carol,
    ):
        await early.request("subscribe", channels=["book.cpu-SPOT"])
        await early.request("subscribe", channels=["book.cpu-SPOT"], depth=10)
        traders = [(alice, ["buy"]), (bob, ["buy", "sell"]), (carol, ["buy", "sell"])]

        async def trade(rounds: int) -> None:
            await asyncio.gather(
                *(
                    trade_randomly(c, random.Random(rng.random()), sides, rounds)
                    for c, sides in traders
                )
            )

        await trade(2)
        await late.request("subscribe", channels=["book.cpu-SPOT"], depth=25)
        await trade(3)
        await barrier(early)
        await barrier(late)
        full = server.get("/api/v1/book/cpu-SPOT").body
        top = server.get("/api/v1/book/cpu-SPOT?depth=10").body
        trades = server.get("/api/v1/trades/cpu-SPOT?limit=1000").body["trades"]

    whole = mirror(early.messages["book"])
    assert whole.seq == full["seq"] > 100
    assert list(whole.levels()) == [full["bids"], full["asks"]]
    assert book_checksum(full["bids"], full["asks"]) == full["checksum"]
    assert list(mirror(early.messages["book"], 10).levels()) == [
        top["bids"],
        top["asks"],
    ]
    bids, asks = mirror(late.messages["book"], 25).levels()
    assert [bids, asks] == [full["bids"][:25], full["asks"][:25]]
    # The burst traded, so levels were emptied by trades as well as cancels.
    assert trades
    # A continuous book is never left crossed.
    if full["bids"] and full["asks"]:
        assert full["bids"][0][0] < full["asks"][0][0]


async def test_a_depth_limited_book_deletes_levels_leaving_its_window(
    server: ServerProcess,
) -> None:
    symbol = "window-SPOT"
    async with (
        connected(server.url, "window-buyer") as buyer,
        connected(server.url) as watcher,
    ):
        placed = await buyer.request_many(
            [place(symbol, "buy", price - 1000, price) for price in range(1001, 1013)]
        )
        by_price = {1001 + i: r["order_id"] for i, r in enumerate(placed)}
        await watcher.request("subscribe", channels=[f"book.{symbol}"], depth=10)
        await watcher.request("subscribe", channels=[f"book.{symbol}"])
        snapshot, whole = await watcher.wait_for("book", 2)

        await buyer.request("cancel", order_id=by_price[1012])  # 1002 comes in
        await buyer.request_many([place(symbol, "buy", 13, 1013)])  # 1002 leaves
        await buyer.request_many([place(symbol, "buy", 1, 900)])  # outside
        await buyer.request("amend", order_id=by_price[1005], qty=1)  # inside
        await watcher.request("ping")
        await watcher.wait_for("book", 2 + 4 + 3)

    ten = [m for m in watcher.messages["book"] if m.get("depth") == 10]
    window = [[p, p - 1000] for p in range(1012, 1002, -1)]
    assert snapshot == {
        "type": "book", "symbol": symbol, "seq": 0, "snapshot": True, "depth": 10,
        "bids": window, "asks": [], "checksum": book_checksum(window, []),
    }  # fmt: skip
    updates = [(m["seq"], sorted(m["bids"]), m["asks"]) for m in ten[1:]]
    assert updates == [
        (1, [[1002, 2], [1012, 0]], []),
        (2, [[1002, 0], [1013, 13]], []),
        (3, [[1005, 1]], []),
    ]
    book = mirror(ten, 10)
    assert book.levels()[0] == [[1013, 13], [1011, 11], [1010, 10], [1009, 9],
                                [1008, 8], [1007, 7], [1006, 6], [1005, 1],
                                [1004, 4], [1003, 3]]  # fmt: skip
    # The whole book's channel saw every change, the level at 900 too.
    full = mirror(watcher.messages["book"])
    assert full.levels()[0][-2:] == [[1001, 1], [900, 1]]
    assert full.seq == whole["seq"] + 4


# -- trades and candles -----------------------------------------------------------


async def test_trades_and_candles_are_published_and_kept_for_rest(
    server: ServerProcess,
) -> None:
    symbol = "tape-SPOT"
    async with (
        connected(server.url, "tape-buyer") as buyer,
        connected(server.url, "tape-seller") as seller,
        connected(server.url) as watcher,
    ):
        await watcher.request(
            "subscribe", channels=[f"trades.{symbol}", f"candles.{symbol}"]
        )
        await seller.request_many(
            [place(symbol, "sell", 5, 2000), place(symbol, "sell", 5, 2001)]
        )
        await buyer.request_many([place(symbol, "buy", 7, 2001)])
        trades = await watcher.wait_for("trade", 2)
        candles = await watcher.wait_for("candle", 2)
        kept = server.get(f"/api/v1/trades/{symbol}").body
        last = server.get(f"/api/v1/trades/{symbol}?limit=1").body
        minutes = server.get(f"/api/v1/candles/{symbol}?interval=60").body
        seconds = server.get(f"/api/v1/candles/{symbol}?interval=1").body

    ts, first_id = trades[0]["ts"], trades[0]["trade_id"]
    assert trades == [
        {"type": "trade", "symbol": symbol, "trade_id": first_id, "price": 2000,
         "qty": 5, "taker_side": "buy", "ts": ts},
        {"type": "trade", "symbol": symbol, "trade_id": first_id + 1, "price": 2001,
         "qty": 2, "taker_side": "buy", "ts": ts},
    ]  # fmt: skip
    assert kept == {"symbol": symbol, "trades": trades}
    assert last == {"symbol": symbol, "trades": trades[1:]}

    def candle(interval: int) -> dict[str, Any]:
        start = ts // (interval * 10**9) * interval * 10**9
        return {"type": "candle", "symbol": symbol, "interval": interval,
                "start": start, "open": 2000, "high": 2001, "low": 2000,
                "close": 2001, "volume": 7}  # fmt: skip

    assert sorted(candles, key=lambda c: c["interval"]) == [candle(1), candle(60)]
    assert minutes == {"symbol": symbol, "candles": [candle(60)]}
    assert seconds == {"symbol": symbol, "candles": [candle(1)]}


# -- auctions and phases ----------------------------------------------------------


async def test_an_opening_auction_publishes_indicative_prices_then_its_result(
    server: ServerProcess,
) -> None:
    symbol = "auction-SPOT"
    channels = [f"auction.{symbol}", f"trades.{symbol}", "phases"]
    async with (
        connected(server.url, "operator") as operator,
        connected(server.url, "auction-buyer") as buyer,
        connected(server.url, "auction-seller") as seller,
        connected(server.url) as watcher,
    ):
        await watcher.request("subscribe", channels=channels)
        await buyer.request("subscribe", channels=["fills"])
        pre_open = await operator.request("set_phase", symbol=symbol, phase="pre_open")
        (buy,) = await buyer.request_many([place(symbol, "buy", 5, 1100)])
        await seller.request_many([place(symbol, "sell", 3, 1000)])
        market = await buyer.request(
            "place", symbol=symbol, side="buy", qty=1, type="market"
        )
        await watcher.request("subscribe", channels=[f"book.{symbol}"])
        (crossed,) = await watcher.wait_for("book")
        opened = await operator.request("set_phase", symbol=symbol, phase="continuous")
        await barrier(buyer)
        await watcher.wait_for("phase", 2)
        after = server.get(f"/api/v1/book/{symbol}").body

    assert pre_open == {"type": "ack", "id": 2}
    assert opened == {"type": "ack", "id": 3}
    assert market == {"type": "error", "id": 4, "code": "NOT_TRADING",
                      "message": CODES[Code.NOT_TRADING]}  # fmt: skip
    # In the call phase the book may cross: nothing trades until the auction.
    assert (crossed["bids"], crossed["asks"]) == ([[1100, 5]], [[1000, 3]])

    stream = watcher.stream
    ts = [m["ts"] for m in stream if "ts" in m]
    tid = watcher.messages["trade"][0]["trade_id"]
    auction = {"type": "auction", "symbol": symbol, "kind": None}
    assert [m for m in stream if m["type"] != "book"] == [
        {"type": "phase", "symbol": symbol, "phase": "pre_open",
         "old_phase": "continuous", "ts": ts[0], "interval_ms": None},
        {**auction, "indicative": True, "price": None, "volume": 0, "surplus": 0,
         "best_bid": None, "best_ask": None, "ts": ts[0]},
        {**auction, "indicative": True, "price": None, "volume": 0, "surplus": 0,
         "best_bid": 1100, "best_ask": None, "ts": ts[2]},
        # Rule 3: the same volume and surplus at 1000 and 1100, buyers left
        # over at both: the higher price.
        {**auction, "indicative": True, "price": 1100, "volume": 3, "surplus": 2,
         "best_bid": 1100, "best_ask": 1000, "ts": ts[3]},
        {**auction, "indicative": False, "kind": "opening", "price": 1100,
         "volume": 3, "surplus": 2, "best_bid": 1100, "best_ask": 1000,
         "ts": ts[4]},
        {"type": "trade", "symbol": symbol, "trade_id": tid,
         "price": 1100, "qty": 3, "taker_side": None, "ts": ts[4]},
        {"type": "phase", "symbol": symbol, "phase": "continuous",
         "old_phase": "pre_open", "ts": ts[4], "interval_ms": None},
    ]  # fmt: skip
    # Both sides of an auction pay the taker rate: 10 bps of 3,300 µcr.
    (fill,) = buyer.messages["fill"]
    assert (fill["order_id"], fill["qty"], fill["fee"], fill["liquidity"]) == (
        buy["order_id"],
        3,
        4,
        "auction",
    )
    assert (after["bids"], after["asks"]) == ([[1100, 2]], [])


async def test_the_phases_channel_tells_every_phase_change(
    server: ServerProcess,
) -> None:
    symbol = "phase-SPOT"
    async with (
        connected(server.url, "operator") as operator,
        connected(server.url) as watcher,
    ):
        await watcher.request("subscribe", channels=["phases"])
        replies = await operator.request_many(
            [
                {"op": "set_phase", "symbol": symbol, "phase": "halted"},
                {"op": "set_phase", "symbol": symbol, "phase": "halted"},
                {"op": "set_phase", "symbol": symbol, "phase": "batch",
                 "interval_ms": 60_000},
                {"op": "set_phase", "symbol": symbol, "phase": "continuous"},
            ]
        )  # fmt: skip
        phases = await watcher.wait_for("phase", 3)
        listed = server.get("/api/v1/instruments").body["instruments"]

    assert [r["type"] for r in replies] == ["ack", "error", "ack", "ack"]
    assert replies[1]["code"] == "INVALID_PHASE"
    assert [(m["old_phase"], m["phase"], m["interval_ms"]) for m in phases] == [
        ("continuous", "halted", None),
        ("halted", "batch", 60_000),
        ("batch", "continuous", None),
    ]
    assert {i["symbol"]: i["phase"] for i in listed}[symbol] == "continuous"


@pytest.mark.parametrize(
    "request_",
    [
        {"op": "set_phase", "symbol": "nope-SPOT", "phase": "halted"},
        {"op": "schedule_phase", "symbol": "nope-SPOT", "phase": "halted",
         "at": 2**62},
    ],
    ids=lambda r: r["op"],
)  # fmt: skip
async def test_an_operator_request_of_an_unknown_symbol_names_it(
    server: ServerProcess, request_: dict[str, Any]
) -> None:
    async with connected(server.url, "operator") as operator:
        (reply,) = await operator.request_many([request_])

    message = "no instrument has this symbol: 'nope-SPOT'"
    assert reply == {
        "type": "error",
        "id": 2,
        "code": "UNKNOWN_SYMBOL",
        "message": message,
    }


async def test_unsubscribe_takes_a_channel_of_any_symbol_of_a_known_kind(
    server: ServerProcess,
) -> None:
    # A future's channels outlive its listing: unsubscribing after its
    # delivery ended must not fail.
    async with connected(server.url) as client:
        reply = await client.request(
            "unsubscribe", channels=["book.gone-SPOT", "trades.gone-SPOT", "phases"]
        )

    assert reply == {"type": "ack", "id": 1}


@pytest.mark.parametrize(
    "request_",
    [
        {"op": "set_phase", "symbol": "phase-SPOT", "phase": "closed"},
        {
            "op": "schedule_phase",
            "symbol": "phase-SPOT",
            "phase": "closed",
            "at": 2**62,
        },
        {"op": "list_future", "resource_class": "cpu", "start": 2**62 // 3600},
    ],
    ids=lambda r: r["op"],
)
async def test_operator_requests_from_other_accounts_are_refused(
    server: ServerProcess, request_: dict[str, Any]
) -> None:
    async with connected(server.url, "bob") as bob:
        (reply,) = await bob.request_many([request_])

    assert reply == {"type": "error", "id": 2, "code": "ROLE_NOT_ALLOWED",
                     "message": CODES[Code.ROLE_NOT_ALLOWED]}  # fmt: skip
    listed = server.get("/api/v1/instruments").body["instruments"]
    assert {i["symbol"]: i["phase"] for i in listed}["phase-SPOT"] == "continuous"
