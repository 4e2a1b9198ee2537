"""`cux serve` end to end: frames the server must refuse, each with its code.

After every bad frame the connection still answers a ping and nothing changed:
the account's balances and orders and the book, over REST; and, for the whole
table at once, the market the journal holds, before and after (its state hash
without the clock and the sequence number, which a rejected command moves too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets
from server_harness import (
    Client,
    ServerProcess,
    connected,
    market_hash,
    recovered_engine,
    write_config,
)

from exchange.protocol import MAX_SOCKET_FRAME, WIRE_CODES, WireCode
from matching.codes import CODES, Code

PLACE: dict[str, Any] = {
    "op": "place",
    "symbol": "cpu-SPOT",
    "side": "buy",
    "qty": 1,
    "price": 100,
}


@dataclass(frozen=True)
class Bad:
    """A bad frame and the error it must get: ``rid`` is the id the error
    echoes; ``message`` None stands for the code's own message."""

    name: str
    frame: str | bytes
    code: str
    rid: int | None = 9
    message: str | None = None
    logged_in: bool = True

    def expected(self) -> dict[str, Any]:
        message = self.message
        if message is None:
            known = {c.value: m for c, m in WIRE_CODES.items()}
            known.update({c.value: m for c, m in CODES.items()})
            message = known[self.code]
        return {"type": "error", "id": self.rid, "code": self.code, "message": message}


def frame(*, ascii_only: bool = True, **fields: Any) -> str:
    return json.dumps({"id": 9, **fields}, ensure_ascii=ascii_only)


def place(**change: Any) -> str:
    return frame(**{**PLACE, **change})


def ping_of(size: int) -> str:
    """A ping frame of exactly ``size`` bytes, padded with an unknown field."""
    padding = size - len(frame(op="ping", pad=""))
    return frame(op="ping", pad="x" * padding)


BAD_FRAME, FIELD = WireCode.BAD_FRAME.value, WireCode.INVALID_FIELD.value
NO_TEXT = (
    "inputs[{}] has no text to embed: it is empty, or only whitespace or "
    "characters the model skips"
)
INT64 = "Expected `int` <= 9223372036854775807"
# msgspec writes the pattern as Python's repr: each backslash doubled.
ORDER_ID = (
    r"Expected `str` matching regex '\\A(0|[1-9][0-9]{0,17})\\Z' - at `$.order_id`"
)
LABEL = r"Expected `str` matching regex '\\A[ -~]{1,64}\\Z'"
NOPE = "no instrument has this symbol: 'nope-SPOT'"
CASES = [
    Bad("not JSON", "hello", BAD_FRAME, None),
    Bad("empty", "", BAD_FRAME, None),
    Bad("JSON and more", frame(op="ping") + " x", BAD_FRAME, None),
    Bad("JSON array", json.dumps([json.loads(frame(op="ping"))]), BAD_FRAME, None),
    Bad("JSON string", '"ping"', BAD_FRAME, None),
    Bad("binary frame", frame(op="ping").encode(), BAD_FRAME, None),
    Bad("deep nesting", '{"op": "ping", "x": ' + "[" * 5000 + "]" * 5000 + "}",
        BAD_FRAME, None),
    Bad("oversized", frame(op="ping", pad="x" * 70_000), "FRAME_TOO_LARGE", None),
    # 22,000 characters, but 66,000 bytes of UTF-8.
    Bad("oversized in bytes", frame(op="ping", pad="€" * 22_000, ascii_only=False),
        "FRAME_TOO_LARGE", None),
    Bad("as large as the socket reads", ping_of(MAX_SOCKET_FRAME), "FRAME_TOO_LARGE",
        None),
    Bad("unknown op", frame(op="fly"), "UNKNOWN_OP"),
    Bad("op not a string", frame(op=7), "UNKNOWN_OP"),
    Bad("no op", frame(), "UNKNOWN_OP"),
    Bad("id a string", json.dumps({"op": "ping", "id": "9"}), FIELD, None,
        "Expected `int`, got `str` - at `$.id`"),
    Bad("id negative", frame(op="ping", id=-9), FIELD, -9,
        "Expected `int` >= 0 - at `$.id`"),
    Bad("id past 2^53", frame(op="ping", id=2**53 + 1), FIELD, 2**53 + 1,
        "Expected `int` <= 9007199254740992 - at `$.id`"),
    Bad("no id", json.dumps({"op": "ping"}), FIELD, None,
        "Object missing required field `id`"),
    Bad("missing field", frame(**{k: v for k, v in PLACE.items() if k != "qty"}),
        FIELD, message="Object missing required field `qty`"),
    Bad("unknown field", frame(op="ping", x=1), FIELD,
        message="Object contains unknown field `x`"),
    Bad("wrong type", place(qty="1"), FIELD,
        message="Expected `int`, got `str` - at `$.qty`"),
    Bad("price a float", place(price=100.0), FIELD,
        message="Expected `int | null`, got `float` - at `$.price`"),
    Bad("qty a float", place(qty=1.5), FIELD,
        message="Expected `int`, got `float` - at `$.qty`"),
    Bad("qty a bool", place(qty=True), FIELD,
        message="Expected `int`, got `bool` - at `$.qty`"),
    Bad("huge qty", place(qty=10**30), FIELD, message=f"{INT64} - at `$.qty`"),
    Bad("huge price", place(price=2**63), FIELD, message=f"{INT64} - at `$.price`"),
    Bad("huge expiry", place(tif="GTD", expire_at=2**64), FIELD,
        message=f"{INT64} - at `$.expire_at`"),
    Bad("order id a number", frame(op="cancel", order_id=16), FIELD,
        message="Expected `str`, got `int` - at `$.order_id`"),
    # msgspec reads a number past 64 bits as a float.
    Bad("huge order id", frame(op="cancel", order_id=2**64), FIELD,
        message="Expected `str`, got `float` - at `$.order_id`"),
    Bad("order id a float", frame(op="cancel", order_id=1.0), FIELD,
        message="Expected `str`, got `float` - at `$.order_id`"),
    Bad("unknown side", place(side="up"), FIELD,
        message="Invalid enum value 'up' - at `$.side`"),
    Bad("negative qty", place(qty=-5), Code.INVALID_QUANTITY.value),
    Bad("qty over the engine's limit", place(qty=10**10), Code.INVALID_QUANTITY.value),
    Bad("order id not digits", frame(op="cancel", order_id="abc"), FIELD,
        message=ORDER_ID),
    Bad("order id with a leading zero", frame(op="cancel", order_id="016"), FIELD,
        message=ORDER_ID),
    Bad("order id negative", frame(op="cancel", order_id="-1"), FIELD,
        message=ORDER_ID),
    Bad("order id with an exponent", frame(op="amend", order_id="1e3", qty=1),
        FIELD, message=ORDER_ID),
    Bad("order id in other digits", frame(op="cancel", order_id="١٢"), FIELD,
        message=ORDER_ID),
    # `$` would match before the newline: "1\n" must not cancel order 1.
    Bad("order id with a trailing newline", frame(op="cancel", order_id="1\n"),
        FIELD, message=ORDER_ID),
    Bad("job id with a trailing newline", frame(op="get_job", job_id="1\n"), FIELD,
        message=ORDER_ID.replace("order_id", "job_id")),
    Bad("client order id with a trailing newline",
        place(client_order_id="line\n"), FIELD,
        message=LABEL + " - at `$.client_order_id`"),
    Bad("order id of 19 digits", frame(op="cancel", order_id="1" * 19), FIELD,
        message=ORDER_ID),
    Bad("order id unknown", frame(op="cancel", order_id="999999"),
        Code.UNKNOWN_ORDER.value),
    Bad("job id a number", frame(op="cancel_job", job_id=1), FIELD,
        message="Expected `str`, got `int` - at `$.job_id`"),
    Bad("job id with a leading zero", frame(op="get_job", job_id="01"), FIELD,
        message=ORDER_ID.replace("order_id", "job_id")),
    Bad("client order id with control characters", place(client_order_id="a\nb\x00"),
        FIELD, message=LABEL + " - at `$.client_order_id`"),
    Bad("client order id not ASCII", place(client_order_id="ordre-é"), FIELD,
        message=LABEL + " - at `$.client_order_id`"),
    Bad("client order id empty", place(client_order_id=""), FIELD,
        message=LABEL + " - at `$.client_order_id`"),
    Bad("counterparty not printable", place(tif="IOC", counterparties=["b\tob"]),
        FIELD, message=LABEL + " - at `$.counterparties[0]`"),
    # An empty list is no list of 1 to 64 names; absent or null is anyone.
    Bad("counterparties empty", place(tif="IOC", counterparties=[]), FIELD,
        message="Expected `array` of length >= 1 - at `$.counterparties`"),
    Bad("counterparty no account", place(tif="IOC", counterparties=["bob", "zzz"]),
        Code.UNKNOWN_ACCOUNT.value,
        message="no account has this name: 'zzz' (in counterparties)"),
    Bad("place of an unknown symbol", place(symbol="nope-SPOT"),
        Code.UNKNOWN_SYMBOL.value, message=NOPE),
    Bad("job of an unknown symbol",
        frame(op="submit_job", symbol="nope-SPOT", inputs=["a"], budget_cu=1,
              max_price=9),
        Code.UNKNOWN_SYMBOL.value, message=NOPE),
    Bad("job with neither max_price nor leases",
        frame(op="submit_job", symbol="cpu-SPOT", inputs=["a"], budget_cu=1), FIELD,
        message="a job needs max_price (a job order) or leases: neither was given"),
    Bad("job with both max_price and leases",
        frame(op="submit_job", symbol="cpu-SPOT", inputs=["a"], budget_cu=1,
              max_price=9, leases=[1]), FIELD,
        message="a job takes max_price (a job order) or leases, not both"),
    Bad("job with lease id 0",
        frame(op="submit_job", symbol="cpu-SPOT", inputs=["a"], budget_cu=1,
              leases=[0]), FIELD,
        message="Expected `int` >= 1 - at `$.leases[0]`"),
    Bad("job with a negative lease id",
        frame(op="submit_job", symbol="cpu-SPOT", inputs=["a"], budget_cu=1,
              leases=[7, -1]), FIELD,
        message="Expected `int` >= 1 - at `$.leases[1]`"),
    Bad("job with an empty input",
        frame(op="submit_job", symbol="cpu-SPOT", inputs=["a", ""], budget_cu=1,
              max_price=9), FIELD, message=NO_TEXT.format(1)),
    Bad("job with an input only whitespace",
        frame(op="submit_job", symbol="cpu-SPOT", inputs=[" \t\n\u3000"],
              budget_cu=1, max_price=9), FIELD, message=NO_TEXT.format(0)),
    Bad("job with an input only a zero-width space",
        frame(op="submit_job", symbol="cpu-SPOT", inputs=["a", "b", "\u200b"],
              budget_cu=1, max_price=9), FIELD, message=NO_TEXT.format(2)),
    Bad("cancel_all of an unknown symbol", frame(op="cancel_all", symbol="nope"),
        Code.UNKNOWN_SYMBOL.value, message="no instrument has this symbol: 'nope'"),
    Bad("orders of an unknown symbol", frame(op="orders", symbol="nope"),
        Code.UNKNOWN_SYMBOL.value, message="no instrument has this symbol: 'nope'"),
    Bad("bad depth", frame(op="subscribe", channels=["book.cpu-SPOT"], depth=7), FIELD,
        message="Invalid enum value 7 - at `$.depth`"),
    Bad("channels not a list", frame(op="subscribe", channels="book.cpu-SPOT"),
        FIELD, message="Expected `array`, got `str` - at `$.channels`"),
    Bad("unknown channel", frame(op="subscribe", channels=["weather"]),
        "UNKNOWN_CHANNEL", message="no channel has this name: 'weather'"),
    Bad("unknown symbol's book", frame(op="subscribe", channels=["book.tpu-SPOT"]),
        Code.UNKNOWN_SYMBOL.value,
        message="no instrument has this symbol: 'tpu-SPOT' (channel 'book.tpu-SPOT')"),
    Bad("unknown symbol's trades",
        frame(op="subscribe", channels=["phases", "trades.nope-SPOT"]),
        Code.UNKNOWN_SYMBOL.value,
        message="no instrument has this symbol: 'nope-SPOT' "
        "(channel 'trades.nope-SPOT')"),
    Bad("unknown channel kind of a known symbol",
        frame(op="subscribe", channels=["ticker.cpu-SPOT"]),
        "UNKNOWN_CHANNEL", message="no channel has this name: 'ticker.cpu-SPOT'"),
    Bad("a channel kind without its symbol", frame(op="subscribe", channels=["book"]),
        "UNKNOWN_CHANNEL", message="no channel has this name: 'book'"),
    Bad("unsubscribe of an unknown channel",
        frame(op="unsubscribe", channels=["nope"]),
        "UNKNOWN_CHANNEL", message="no channel has this name: 'nope'"),
    Bad("unsubscribe of a channel kind without its symbol",
        frame(op="unsubscribe", channels=["phases", "book"]),
        "UNKNOWN_CHANNEL", message="no channel has this name: 'book'"),
    Bad("private channel before login", frame(op="subscribe", channels=["orders"]),
        "NOT_LOGGED_IN", message="log in first: 'orders'", logged_in=False),
    Bad("trading before login", place(), "NOT_LOGGED_IN", logged_in=False),
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("bad-input")
    with ServerProcess(write_config(folder), folder / "data") as server:
        asyncio.run(_rest_an_order(server.url))
        yield server


async def _rest_an_order(url: str) -> None:
    async with connected(url, "alice") as alice:
        await alice.request("place", symbol="cpu-SPOT", side="buy", qty=2, price=99)


def state(server: ServerProcess) -> tuple[Any, ...]:
    """What a bad frame must not change, as REST shows it."""
    book = server.get("/api/v1/book/cpu-SPOT").body
    return (
        server.get_signed("alice", "/api/v1/account").body,
        server.get_signed("alice", "/api/v1/orders").body,
        book["bids"],
        book["asks"],
    )


async def refuse(client: Client, bad: Bad) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send ``bad``; return the error it got and the answer to a ping after it."""
    errors_before = len(client.messages["error"])
    await client.send_raw(bad.frame)
    pong = await client.request("ping")
    if bad.rid is None:
        # An error without an id comes before the pong: frames are answered
        # in order unless the sequencer has to be asked.
        assert len(client.messages["error"]) == errors_before + 1
        return client.messages["error"][-1], pong
    return await client.response(bad.rid), pong


@pytest.mark.parametrize("bad", CASES, ids=[c.name for c in CASES])
async def test_a_bad_frame_gets_its_error_and_changes_nothing(
    server: ServerProcess, bad: Bad
) -> None:
    before = state(server)
    async with connected(server.url, "alice" if bad.logged_in else None) as client:
        # Keep the bad frame's id clear of the requests' own.
        client.next_id = 100
        error, pong = await refuse(client, bad)
        again = await client.request("ping")

    assert error == bad.expected()
    assert pong["type"] == again["type"] == "pong"
    assert state(server) == before


async def test_a_frame_over_the_sockets_bound_closes_the_connection_with_1009(
    server: ServerProcess,
) -> None:
    async with connected(server.url, "alice") as client:
        # The server may close before the whole frame is out.
        with contextlib.suppress(websockets.ConnectionClosed):
            await client.send_raw(ping_of(MAX_SOCKET_FRAME + 1))
        await client.wait_closed()

        assert (client.close_code, client.close_reason) == (
            1009,
            "frame over 4,194,304 bytes",
        )
        assert "error" not in client.messages
    async with connected(server.url, "alice") as again:
        assert (await again.request("ping"))["type"] == "pong"


def test_the_whole_table_leaves_the_journaled_market_unchanged(
    tmp_path: Path,
) -> None:
    config, data = write_config(tmp_path), tmp_path / "data"
    with ServerProcess(config, data) as server:
        asyncio.run(_rest_an_order(server.url))
    before = recovered_engine(data, config)

    with ServerProcess(config, data) as server:
        asyncio.run(_send_all(server.url))
        assert server.stop() == 0
    after = recovered_engine(data, config)

    assert after.seq > before.seq  # the rejected commands were journaled
    assert market_hash(after) == market_hash(before)
    assert len(after.orders) == 1


async def _send_all(url: str) -> None:
    async with connected(url, "alice") as alice, connected(url) as visitor:
        alice.next_id = visitor.next_id = 100
        for bad in CASES:
            error, pong = await refuse(alice if bad.logged_in else visitor, bad)
            assert error == bad.expected()
            assert pong["type"] == "pong"
