"""`cux serve` end to end: random frames never crash it nor change the market.

Hypothesis draws frames of every kind: random JSON values, requests with a real
or a made-up op and random fields, random text and random bytes. They go to one
server, on the connection of ``mallory`` (an account with no money and no
capacity, so nothing she sends can move money or rest an order) or of a visitor
who is not logged in. Each frame gets exactly one answer: an error with a known
code (echoing the frame's id when it had a usable one), or the right response
to a valid request. The connections stay up, and the market the journal holds
afterwards is the one it held before.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import msgspec
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_harness import (
    ServerProcess,
    connected,
    market_hash,
    recovered_engine,
    write_config,
)

from exchange.protocol import REQUESTS, WireCode
from matching.codes import Code

MALLORY = """
[[accounts]]
key = "mallory"
secret = "mallory-secret"
roles = ["consumer"]
"""
BARRIER = 2**53
"""The id of the request that follows each frame; frames never use it."""
CODES = {c.value for c in WireCode} | {c.value for c in Code}
ANSWERS = {"ack", "error", "result", "subscribed", "pong"}
SUCCESS = {
    "ping": {"pong"},
    "subscribe": {"subscribed"},
    "unsubscribe": {"ack"},
    "balance": {"result"},
    "orders": {"result"},
    "place": {"ack"},  # a market buy on an empty book is accepted, then cancelled
    "cancel_all": {"ack"},
}

# -- frames -----------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
plausible = st.sampled_from(
    [
        "cpu-SPOT", "book.cpu-SPOT", "buy", "sell", "limit", "market", "GTC", "IOC",
        "FOK", "GTD", "pre_open", "continuous", "halted", "cpu", "orders", "1", "12",
        0, 1, 5, 10, 12, 100, 1000, -1, 2**63, 2**64, -(2**63) - 1, 10**30,
        ["book.cpu-SPOT"], ["orders", "fills"],
        ["trades.cpu-SPOT"], ["phases"],
    ]
)  # fmt: skip
FIELDS = sorted(
    {f.name for cls in REQUESTS.values() for f in msgspec.structs.fields(cls)}
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request-like object: a real or made-up op, some of its own fields and
    maybe others, each with a plausible or a random value, and usually an id."""
    op = draw(st.sampled_from(sorted(REQUESTS)) | st.text(max_size=12))
    own = (
        [f.name for f in msgspec.structs.fields(REQUESTS[op])] if op in REQUESTS else []
    )
    names = draw(st.sets(st.sampled_from(own))) if own else set()
    names |= draw(st.sets(st.sampled_from([*FIELDS, "extra"]), max_size=2))
    body: dict[str, Any] = {
        name: draw(plausible | json_values) for name in sorted(names - {"op", "id"})
    }
    body["op"] = op
    if draw(st.booleans()):
        body["id"] = draw(ids)
    return body


ids = st.integers(0, 10**6)
maybe_ints = st.integers() | st.none()
# Orders of the right shape whose numbers may be anything at all.
orders = st.one_of(
    st.fixed_dictionaries(
        {"op": st.just("place"), "id": ids, "symbol": st.just("cpu-SPOT"),
         "side": st.sampled_from(["buy", "sell"]), "qty": st.integers(),
         "price": maybe_ints}
    ),
    st.fixed_dictionaries(
        {"op": st.just("cancel"), "id": ids,
         "order_id": st.integers() | st.text(max_size=25)}
    ),
    st.fixed_dictionaries(
        {"op": st.just("amend"), "id": ids, "order_id": st.integers(),
         "qty": maybe_ints, "price": maybe_ints}
    ),
)  # fmt: skip
frames = st.one_of(
    # Requests twice over: they get furthest into the server.
    requests().map(json.dumps),
    requests().map(json.dumps),
    orders.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.binary(max_size=60),
)


# -- checking the answers ---------------------------------------------------------


async def exchange_frame(ws: Any, frame: str | bytes) -> list[dict[str, Any]]:
    """Send ``frame`` and a barrier request; return the answers before the
    barrier's (market data and heartbeats left out). The barrier subscribes to
    no channel: it goes through the sequencer, like any request the frame may
    be, so its answer comes last, logged in or not."""
    await ws.send(frame)
    await ws.send(json.dumps({"op": "subscribe", "id": BARRIER, "channels": []}))
    answers: list[dict[str, Any]] = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if message.get("id") == BARRIER and message["type"] == "subscribed":
            return answers
        if message["type"] in ANSWERS:
            answers.append(message)


def check_answer(frame: str | bytes, answers: list[dict[str, Any]]) -> None:
    assert len(answers) == 1, (frame, answers)
    (answer,) = answers
    try:
        parsed = json.loads(frame) if isinstance(frame, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        assert answer == {
            "type": "error",
            "id": None,
            "code": "BAD_FRAME",
            "message": "a request is one JSON object in a text frame",
        }
        return  # fmt: skip

    rid, op = parsed.get("id"), parsed.get("op")
    if type(rid) is int and 0 <= rid <= BARRIER and answer.get("code") != "BAD_FRAME":
        assert answer["id"] == rid, (frame, answer)
    if answer["type"] == "error":
        assert answer["code"] in CODES, answer
        assert isinstance(answer["message"], str)
    else:
        assert answer["type"] in SUCCESS.get(str(op), set()), (frame, answer)


async def send_all(url: str, batch: list[tuple[bool, str | bytes]]) -> None:
    """Send each frame of ``batch`` on mallory's connection (True) or a
    visitor's, check its answer, and check that both still answer a ping."""
    async with websockets.connect(url) as mallory, websockets.connect(url) as visitor:
        hello = json.loads(await mallory.recv())
        await visitor.recv()
        signature = _sign("mallory-secret", hello["nonce"])
        await mallory.send(json.dumps({"op": "login", "id": 0, "key": "mallory",
                                       "signature": signature}))  # fmt: skip
        assert json.loads(await mallory.recv())["type"] == "ack"
        for as_mallory, frame in batch:
            ws = mallory if as_mallory else visitor
            answers = await exchange_frame(ws, frame)
            check_answer(frame, answers)
        for ws in (mallory, visitor):
            (pong,) = await exchange_frame(ws, json.dumps({"op": "ping", "id": 1}))
            assert (pong["type"], pong["id"]) == ("pong", 1)


def _sign(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), nonce.encode(), hashlib.sha256).hexdigest()


def test_random_frames_never_crash_the_server_nor_change_the_market(
    tmp_path: Path,
) -> None:
    config, data = write_config(tmp_path, extra=MALLORY), tmp_path / "data"
    with ServerProcess(config, data) as server:
        asyncio.run(_rest_orders(server.url))
    before = recovered_engine(data, config)

    with ServerProcess(config, data) as server:

        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(st.lists(st.tuples(st.booleans(), frames), min_size=10, max_size=10))
        def run(batch: list[tuple[bool, str | bytes]]) -> None:
            text = [f for _, f in batch if isinstance(f, str)]
            if any(str(BARRIER) in f for f in text):
                return
            asyncio.run(send_all(server.url, batch))

        run()
        assert server.proc.poll() is None
        assert server.get("/health").body["status"] == "ok"
        assert server.stop() == 0

    after = recovered_engine(data, config)
    assert market_hash(after, ("mallory",)) == market_hash(before, ("mallory",))


async def _rest_orders(url: str) -> None:
    """Resting orders of alice and bob, so that random order ids find some."""
    async with connected(url, "alice") as alice, connected(url, "bob") as bob:
        for price in (90, 95, 99):
            await alice.request("place", symbol="cpu-SPOT", side="buy", qty=1,
                                price=price)  # fmt: skip
        await bob.request("place", symbol="cpu-SPOT", side="sell", qty=1, price=2000)
