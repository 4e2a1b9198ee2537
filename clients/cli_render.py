"""How the client commands show things: rich tables for people, JSON for scripts.

Every ``*_json`` function returns plain data (dicts, lists, integers, strings)
that ``--json`` prints as one JSON document; every ``*_table`` function returns
a rich renderable. Prices are µcr per lot and quantities lots, as the commands
take them; balances and bills are shown in credits and µcr.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import zip_longest
from typing import Any

import msgspec
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from clients.book import BookMirror
from clients.errors import ServerError
from clients.messages import (
    Balance,
    Job,
    OpenOrder,
    OrderResult,
    PlacedOrder,
    TradeMessage,
)
from clients.sizing import format_credits

__all__ = [
    "Cancelled",
    "amend_json",
    "amend_text",
    "balance_table",
    "book_json",
    "book_view",
    "cancel_json",
    "cancel_table",
    "job_json",
    "job_table",
    "order_json",
    "order_table",
    "orders_table",
    "to_builtins",
]

GFLOP = 10**9

Cancelled = tuple[str, ServerError | None]
"""An order id ``cux cancel`` was given, and None or the server's refusal."""


def to_builtins(value: Any) -> Any:
    """Structs as dicts, for ``--json``."""
    return msgspec.to_builtins(value)


# -- the book -----------------------------------------------------------------------


def book_json(
    mirror: BookMirror, depth: int | None, trades: Sequence[TradeMessage]
) -> dict[str, Any]:
    bids, asks = mirror.bids(depth), mirror.asks(depth)
    return {
        "symbol": mirror.symbol,
        "seq": mirror.seq,
        "checksum": mirror.checksum(),
        "best_bid": mirror.best_bid,
        "best_ask": mirror.best_ask,
        "spread": mirror.spread,
        "bids": [list(level) for level in bids],
        "asks": [list(level) for level in asks],
        "trades": [to_builtins(t) for t in trades],
    }


def book_view(
    mirror: BookMirror, depth: int, trades: Sequence[TradeMessage]
) -> RenderableType:
    """The book side by side, the spread, and the latest trades (newest first)."""
    if not mirror.synced:
        return Text(f"{mirror.symbol}: waiting for a snapshot ...")
    book = Table(
        title=f"{mirror.symbol} book (seq {mirror.seq})",
        caption="price: µcr per lot; qty: lots",
    )
    for name in ("bid qty", "bid", "ask", "ask qty"):
        book.add_column(name, justify="right")
    for bid, ask in zip_longest(mirror.bids(depth), mirror.asks(depth)):
        book.add_row(*_level(bid, reverse=True), *_level(ask, reverse=False))
    spread = mirror.spread
    line = Text(
        f"best bid {_opt(mirror.best_bid)}  best ask {_opt(mirror.best_ask)}  "
        f"spread {_opt(spread)}"
    )
    recent = Table(title="Latest trades")
    for name, justify in (("id", "right"), ("price", "right"), ("qty", "right")):
        recent.add_column(name, justify=justify)  # type: ignore[arg-type]
    recent.add_column("taker")
    for trade in trades:
        recent.add_row(
            str(trade.trade_id),
            str(trade.price),
            str(trade.qty),
            trade.taker_side or "auction",
        )
    return Group(book, line, recent)


def _level(level: tuple[int, int] | None, *, reverse: bool) -> list[str]:
    if level is None:
        return ["", ""]
    price, qty = str(level[0]), str(level[1])
    return [qty, price] if reverse else [price, qty]


def _opt(value: int | None) -> str:
    return "-" if value is None else str(value)


# -- orders and balances ------------------------------------------------------------


def order_json(placed: PlacedOrder, result: OrderResult | None) -> dict[str, Any]:
    out: dict[str, Any] = to_builtins(placed)
    if placed.tif is None:
        # The server's default, as ``cux orders`` shows it.
        out["tif"] = "IOC" if placed.price is None else "GTC"
    if result is not None:
        out.update(
            status=result.status,
            filled=result.filled,
            leaves=result.leaves,
            reason=result.reason,
            fills=[to_builtins(f) for f in result.fills],
        )
    return out


def order_table(placed: PlacedOrder, result: OrderResult | None) -> RenderableType:
    table = Table(title=f"Order {placed.order_id}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    price = "market" if placed.price is None else str(placed.price)
    table.add_row("order", f"{placed.side} {placed.qty} {placed.symbol} @ {price}")
    if result is not None:
        table.add_row("status", result.status + _reason(result.reason))
        table.add_row("filled", f"{result.filled} lots, {result.leaves} open")
        if result.fills:
            average = result.notional // sum(f.qty for f in result.fills)
            table.add_row("fills", f"{len(result.fills)}, average price {average}")
            table.add_row("fees", f"{result.fees} µcr")
    return table


def amend_json(
    order_id: str,
    before: OpenOrder | None,
    after: OpenOrder | None,
    result: OrderResult | None,
    asked: dict[str, int | None],
) -> dict[str, Any]:
    """``cux amend``: the order as it stands after the amend. ``before`` and
    ``after`` are its listing before the amend and after it (None once it
    is no longer open: it filled); ``result`` what the ``orders`` and
    ``fills`` channels said meanwhile; ``asked`` the ``qty`` and ``price``
    given. The fields of `OpenOrder` with ``status`` (``amended``,
    ``partially_filled``, ``filled``, ...) and the ``fills`` the amend made;
    with no listing at all, the order id and the fields given."""
    order = after or before
    if order is None:
        given = {k: v for k, v in asked.items() if v is not None}
        return {"order_id": order_id, **given}
    out: dict[str, Any] = to_builtins(order)
    if after is None and asked["price"] is not None:
        # No longer open: its price is the amend's, its state the channels'.
        out["price"] = asked["price"]
    if result is not None:
        leaves = after.leaves if after is not None else result.leaves
        out.update(
            filled=result.filled,
            leaves=leaves,
            qty=result.filled + leaves,
            status=result.status,
            reason=result.reason,
            fills=[to_builtins(f) for f in result.fills],
        )
    return out


def amend_text(data: dict[str, Any]) -> str:
    """``cux amend``: one line of what `amend_json` holds."""
    text = f"amended {data['order_id']}"
    if "status" not in data:
        return text
    fills = data["fills"]
    lots = sum(f["qty"] for f in fills)
    traded = ""
    if lots:
        average = sum(f["price"] * f["qty"] for f in fills) // lots
        fees = sum(f["fee"] for f in fills)
        traded = f"{lots} lots at an average price of {average} (fees {fees} µcr)"
    if data["status"] == "filled":
        return f"{text}: filled, {traded}" if traded else f"{text}: filled"
    if data["leaves"] and data["status"] not in ("cancelled", "expired"):
        text += f": {data['leaves']} open at {data['price']}"
        return f"{text}; filled {traded}" if traded else text
    return f"{text}: {data['status']}{_reason(data['reason'])}"


def _reason(reason: str | None) -> str:
    return "" if reason is None else f" ({reason})"


def cancel_json(outcomes: Sequence[Cancelled]) -> dict[str, Any]:
    """``cux cancel ID...``: the ids cancelled, and those the server refused
    with its code and message, each in the order given."""
    return {
        "cancelled": [order_id for order_id, error in outcomes if error is None],
        "failed": [
            {"order_id": order_id, "code": error.code, "message": error.message}
            for order_id, error in outcomes
            if error is not None
        ],
    }


def cancel_table(outcomes: Sequence[Cancelled]) -> RenderableType:
    """``cux cancel ID...``: one row an id, ``cancelled`` or the refusal."""
    table = Table(title="Cancel")
    table.add_column("id", justify="right")
    table.add_column("result")
    for order_id, error in outcomes:
        result = "cancelled" if error is None else f"{error.code}: {error.message}"
        table.add_row(order_id, result)
    return table


def orders_table(orders: Iterable[OpenOrder]) -> RenderableType:
    table = Table(title="Open orders (price in µcr per lot, qty in lots)")
    for name in ("id", "symbol", "side", "type", "tif", "price", "qty", "filled"):
        table.add_column(name, justify="right" if name in _NUMERIC else "left")
    table.add_column("leaves", justify="right")
    table.add_column("client id")
    for o in orders:
        table.add_row(
            o.order_id,
            o.symbol,
            o.side,
            o.type,
            o.tif,
            _opt(o.price),
            str(o.qty),
            str(o.filled),
            str(o.leaves),
            o.client_order_id or "",
        )
    return table


_NUMERIC = frozenset({"id", "price", "qty", "filled"})


def balance_table(account: str | None, balance: Balance) -> RenderableType:
    table = Table(title=f"Balance of {account}")
    table.add_column("")
    table.add_column("credits", justify="right")
    table.add_column("µcr", justify="right")
    for name in ("available", "held", "escrow"):
        micro = getattr(balance, name)
        table.add_row(name, format_credits(micro), str(micro))
    return table


# -- jobs ---------------------------------------------------------------------------


def job_json(job: Job, *, embeddings: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = to_builtins(job)
    if not embeddings:
        for result in out["results"]:
            if result is not None:
                result.pop("embedding", None)
    return out


def job_table(job: Job) -> RenderableType:
    summary = Table(title=f"Job {job.job_id}", show_header=False)
    summary.add_column("field")
    summary.add_column("value")
    summary.add_row("status", job.status + _reason(job.reason))
    summary.add_row("inputs", str(job.inputs))
    summary.add_row("compute", f"{job.flops / GFLOP:.3f} CU ({job.flops} FLOPs)")
    if job.budget_flops is not None:
        summary.add_row("budget", f"{job.budget_flops / GFLOP:.3f} CU")
    summary.add_row("cost", f"{format_credits(job.cost)} credits")
    summary.add_row("refund", f"{format_credits(job.refund)} credits")
    if not job.results:
        return summary
    rows = Table(title="Results (embedding: first 3 of its dimensions)")
    for name in ("#", "tokens", "layers", "exit", "CU", "embedding"):
        rows.add_column(
            name, justify="left" if name in ("exit", "embedding") else "right"
        )
    for i, result in enumerate(job.results):
        if result is None:
            rows.add_row(str(i), "", "", "not run", "", "")
            continue
        head = ", ".join(f"{x:+.4f}" for x in result.embedding[:3])
        rows.add_row(
            str(i),
            str(result.tokens),
            str(result.layers),
            result.exit,
            f"{result.flops / GFLOP:.3f}",
            f"[{head}, ...] ({len(result.embedding)})",
        )
    return Group(summary, rows)
