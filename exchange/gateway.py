"""The websocket gateway: one endpoint, ``/ws``, for trading and market data.

Each text frame is one request (see `exchange.protocol`). A request is checked
in this order, and the first failure is answered with an ``error`` message that
echoes the request's id; the connection stays open and nothing changes:

1. size (`MAX_FRAME`), 2. JSON object, 3. rate limit, 4. known op, 5. fields,
6. login and role, 7. the engine's own rules (its rejection codes).

Requests that touch the engine go through the sequencer; their replies come in
engine order, after the journal made them durable.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from exchange.gateway_jobs import JobRequests
from exchange.login_limit import refusal
from exchange.nodes import NODE_CODES, Node, lots_of
from exchange.protocol import (
    MAX_FRAME,
    MAX_NODE_FRAME,
    MAX_SOCKET_FRAME,
    REQUESTS,
    WIRE_CODES,
    Ack,
    Amend,
    Balance,
    BalanceResult,
    Cancel,
    CancelAll,
    ErrorMessage,
    Hello,
    ListFutureRequest,
    Login,
    OrderInfo,
    Orders,
    OrdersResult,
    Ping,
    Place,
    Pong,
    RegisterNode,
    SchedulePhaseRequest,
    SetPhaseRequest,
    Subscribe,
    Subscribed,
    Unsubscribe,
    WireCode,
    decode_request,
    encode,
    peek,
)
from exchange.sequencer import Work
from exchange.sessions import PRIVATE_CHANNELS, ChannelKey, Session, sign
from matching import (
    AmendOrder,
    CancelOrder,
    CapacitySet,
    Command,
    CommandRejected,
    Engine,
    Event,
    ListFuture,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    SchedulePhase,
    SetPhase,
)
from matching.codes import CODES, Code
from matching.order import SIDE_NAMES, TIF_NAMES, Order

if TYPE_CHECKING:
    from exchange.server import Exchange

__all__ = ["Gateway", "order_info", "signature_matches"]

log = logging.getLogger("cux.gateway")

PUBLIC_PREFIXES = ("book", "trades", "auction", "candles")
PUBLIC_CHANNELS = frozenset({"phases", "instruments"})


class Gateway:
    """Handles the websocket connections of one `Exchange`."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.settings = exchange.settings
        self.hub = exchange.hub
        self._handlers: dict[type, Callable[[Session, Any], None]] = {
            Login: self._login,
            Subscribe: self._subscribe,
            Unsubscribe: self._unsubscribe,
            Place: self._place,
            Cancel: self._cancel,
            CancelAll: self._cancel_all,
            Amend: self._amend,
            Balance: self._balance,
            Orders: self._orders,
            Ping: self._ping,
            SetPhaseRequest: self._operator,
            SchedulePhaseRequest: self._operator,
            ListFutureRequest: self._operator,
            RegisterNode: self._register_node,
            **JobRequests(self).handlers(),
        }

    # -- the connection ---------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        server = self.settings.server
        ws = _WebSocket(
            heartbeat=server.heartbeat_seconds * 2,
            # aiohttp refuses a frame of max_msg_size bytes itself.
            max_msg_size=MAX_SOCKET_FRAME + 1,
            # Compressing each message for each subscriber costs more CPU than
            # loopback and LAN bandwidth save.
            compress=False,
        )
        await ws.prepare(request)
        session = Session(
            ws,
            rate=server.rate_limit,
            max_queue=server.max_queue,
            transport=request.transport,
            protocol=request.protocol,
        )
        session.remote = request.remote
        self.hub.sessions.add(session)
        self.exchange.metrics.connections.inc()
        session.send(encode(Hello(session.nonce, self.exchange.clock())))
        log.info("connection from %s", request.remote)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.on_frame(session, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._error(session, None, WireCode.BAD_FRAME)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._disconnected(session)
        return ws

    def _disconnected(self, session: Session) -> None:
        self.hub.drop(session)
        session.stop()
        self.exchange.metrics.connections.dec()
        log.info("connection of %s closed", session.account or "a visitor")
        changed = self.exchange.nodes.drop_session(session)
        self.exchange.dispatcher.node_lost(session)
        if changed:
            log.info("nodes of %s left; capacity registered again", session.account)
            self.exchange.register_capacity(changed)
        if session.cancel_on_disconnect and session.account and session.placed:
            account = session.account
            placed = sorted(session.placed)

            def cancels(engine: Engine) -> list[Command]:
                return [
                    CancelOrder(account, order_id)
                    for order_id in placed
                    if order_id in engine.orders
                ]

            self.exchange.submit(Work(expand=cancels))

    # -- requests ---------------------------------------------------------------

    def on_frame(self, session: Session, data: str) -> None:
        """Check and dispatch one text frame."""
        if _frame_bytes(data) > (MAX_NODE_FRAME if session.node else MAX_FRAME):
            self._error(session, None, WireCode.FRAME_TOO_LARGE)
            return
        try:
            envelope = peek(data)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            # RecursionError: JSON nested deeper than the decoder goes.
            self._error(session, None, WireCode.BAD_FRAME)
            return
        rid = envelope.id if type(envelope.id) is int else None
        if not session.limiter.allow():
            self.exchange.metrics.rate_limited.inc()
            self._error(session, rid, WireCode.RATE_LIMITED)
            return
        op = envelope.op
        if type(op) is not str or op not in REQUESTS:
            self._error(session, rid, WireCode.UNKNOWN_OP)
            return
        try:
            request = decode_request(op, data)
        except msgspec.ValidationError as exc:
            self._error(session, rid, WireCode.INVALID_FIELD, str(exc))
            return
        if not self.exchange.accepting and op not in ("ping", "unsubscribe"):
            self._error(session, rid, WireCode.SHUTTING_DOWN)
            return
        self._handlers[type(request)](session, request)

    def _login(self, session: Session, req: Login) -> None:
        if session.account is not None:
            self._error(session, req.id, WireCode.ALREADY_LOGGED_IN)
            return
        failed_logins = self.exchange.failed_logins
        wait = failed_logins.refused_for(session.remote)
        if wait:
            self.exchange.metrics.rate_limited.inc()
            self._error(session, req.id, WireCode.RATE_LIMITED, refusal(wait))
            return
        account = self.settings.account(req.key)
        # Compute a signature even for an unknown key, so that the answer
        # takes as long and says the same either way.
        secret = account.secret if account is not None else "unknown-key"
        expected = sign(secret, session.nonce)
        if not signature_matches(expected, req.signature) or account is None:
            log.warning("failed login for key %r from %s", req.key[:64], session.remote)
            failed_logins.failed(session.remote)
            self._error(session, req.id, WireCode.AUTH_FAILED)
            return
        session.account = account.key
        session.roles = account.roles
        session.cancel_on_disconnect = req.cancel_on_disconnect
        session.send(encode(Ack(req.id, account=account.key)))

    def _subscribe(self, session: Session, req: Subscribe) -> None:
        keys: list[ChannelKey] = []
        for name in req.channels:
            key = self._channel_key(session, name, req.depth)
            if isinstance(key, Refusal):
                self._refuse(session, req.id, key.code, key.message)
                return
            keys.append(key)
        marketdata = self.exchange.marketdata

        hub = self.hub

        def snapshots(engine: Engine) -> list[bytes]:
            taken = [
                marketdata.book_snapshot(key[0][5:], key[1])
                for key in keys
                if key[0].startswith("book.")
            ]
            # From here on, in engine order, messages are built for these keys
            # (announced once the snapshots are taken, so none is left behind).
            hub.expect(keys)
            return taken

        def reply(result: list[bytes]) -> None:
            if session.closed:
                for key in keys:
                    hub.unexpect(key)
                return
            session.send(encode(Subscribed(req.id, list(req.channels))))
            for key in keys:
                hub.add(session, key, expected=True)
            for data in result:
                session.send(data)

        self.exchange.submit(Work(read=snapshots, reply=reply))

    def _channel_key(
        self, session: Session, name: str, depth: int | None
    ) -> ChannelKey | Refusal:
        """The channel's key, or why it is refused: a channel of a known kind
        (``book.``, ``trades.`` ...) but no instrument is ``UNKNOWN_SYMBOL``."""
        if name in PRIVATE_CHANNELS:
            if session.account is None:
                code = WireCode.NOT_LOGGED_IN
                return Refusal(code.value, f"{WIRE_CODES[code]}: {name!r}")
            return (name, session.account)
        if name in PUBLIC_CHANNELS:
            return (name, None)
        if not _channel_kind_known(name):
            code = WireCode.UNKNOWN_CHANNEL
            return Refusal(code.value, f"{WIRE_CODES[code]}: {name!r}")
        prefix, _, symbol = name.partition(".")
        if symbol not in self.exchange.engine.instruments:
            what = CODES[Code.UNKNOWN_SYMBOL]
            return Refusal(
                Code.UNKNOWN_SYMBOL.value, f"{what}: {symbol!r} (channel {name!r})"
            )
        return (name, depth if prefix == "book" else None)

    def _unsubscribe(self, session: Session, req: Unsubscribe) -> None:
        for name in req.channels:
            if not _channel_kind_known(name):
                code = WireCode.UNKNOWN_CHANNEL
                self._error(session, req.id, code, f"{WIRE_CODES[code]}: {name!r}")
                return
        names = set(req.channels)
        self.hub.remove(session, [k for k in session.channels if k[0] in names])
        session.send(encode(Ack(req.id)))

    def _place(self, session: Session, req: Place) -> None:
        account = self._logged_in(session, req.id)
        if account is None:
            return
        ledger = self.exchange.engine.ledger
        for name in req.counterparties or ():
            if ledger.index(name) is None:
                what = CODES[Code.UNKNOWN_ACCOUNT]
                message = f"{what}: {name!r} (in counterparties)"
                self._refuse(session, req.id, Code.UNKNOWN_ACCOUNT.value, message)
                return
        command = PlaceOrder(
            account,
            req.symbol,
            req.side,
            req.qty,
            type=req.type,
            price=req.price,
            tif=req.tif,
            expire_at=req.expire_at,
            post_only=req.post_only,
            stp=req.stp,
            client_order_id=req.client_order_id,
            counterparties=tuple(req.counterparties or ()),
        )

        def reply(events: list[Event]) -> None:
            rejection = _rejection(events)
            if rejection is not None:
                error = rejection_message(req.id, rejection, req.symbol)
                session.send(encode(error))
                return
            order_id = next(e.order_id for e in events if type(e) is OrderAccepted)
            if session.closed:
                # The connection dropped while the order was on its way: it
                # was not among the orders cancelled then, so cancel it now.
                if session.cancel_on_disconnect:
                    self._cancel_if_open(account, order_id)
                return
            session.placed.add(order_id)
            if len(session.placed) > 4096:
                # Remember only the orders still open, for cancel-on-disconnect.
                session.placed &= self.exchange.engine.orders.keys()
            session.send(encode(Ack(req.id, order_id=str(order_id))))

        self.exchange.submit(Work(command=command, reply=reply))

    def _cancel_if_open(self, account: str, order_id: int) -> None:
        def cancel(engine: Engine) -> list[Command]:
            if order_id in engine.orders:
                return [CancelOrder(account, order_id)]
            return []

        self.exchange.submit(Work(expand=cancel))

    def _cancel(self, session: Session, req: Cancel) -> None:
        account = self._logged_in(session, req.id)
        if account is None:
            return
        order_id = int(req.order_id)
        self._command(session, req.id, CancelOrder(account, order_id), req.order_id)

    def _amend(self, session: Session, req: Amend) -> None:
        account = self._logged_in(session, req.id)
        if account is None:
            return
        command = AmendOrder(account, int(req.order_id), qty=req.qty, price=req.price)
        self._command(session, req.id, command, req.order_id)

    def _cancel_all(self, session: Session, req: CancelAll) -> None:
        account = self._logged_in(session, req.id)
        if account is None or not self._known_symbol(session, req.id, req.symbol):
            return

        def cancels(engine: Engine) -> list[Command]:
            number = engine.ledger.index(account)
            return [
                CancelOrder(account, order.order_id)
                for order in sorted(engine.orders.values(), key=lambda o: o.order_id)
                if order.account == number
                and (req.symbol is None or order.symbol == req.symbol)
            ]

        def reply(events: list[Event]) -> None:
            count = sum(isinstance(e, OrderCancelled) for e in events)
            session.send(encode(Ack(req.id, cancelled=count)))

        self.exchange.submit(Work(expand=cancels, reply=reply))

    def _balance(self, session: Session, req: Balance) -> None:
        account = self._logged_in(session, req.id)
        if account is None:
            return

        def read(engine: Engine) -> BalanceResult:
            ledger = engine.ledger
            i = ledger.index(account)
            assert i is not None
            return BalanceResult(
                req.id, ledger.available[i], ledger.held[i], ledger.escrow[i]
            )

        self.exchange.submit(
            Work(read=read, reply=lambda result: session.send(encode(result)))
        )

    def _orders(self, session: Session, req: Orders) -> None:
        account = self._logged_in(session, req.id)
        if account is None or not self._known_symbol(session, req.id, req.symbol):
            return

        def read(engine: Engine) -> OrdersResult:
            number = engine.ledger.index(account)
            return OrdersResult(
                req.id,
                [
                    order_info(order)
                    for order in sorted(
                        engine.orders.values(), key=lambda o: o.order_id
                    )
                    if order.account == number
                    and (req.symbol is None or order.symbol == req.symbol)
                ],
            )

        self.exchange.submit(
            Work(read=read, reply=lambda result: session.send(encode(result)))
        )

    def _ping(self, session: Session, req: Ping) -> None:
        session.send(encode(Pong(req.id, self.exchange.clock())))

    def _operator(
        self,
        session: Session,
        req: SetPhaseRequest | SchedulePhaseRequest | ListFutureRequest,
    ) -> None:
        if self._logged_in(session, req.id) is None:
            return
        if "operator" not in session.roles:
            self._engine_error(session, req.id, Code.ROLE_NOT_ALLOWED)
            return
        command: Command
        if isinstance(req, SetPhaseRequest):
            command = SetPhase(req.symbol, req.phase, req.interval_ms)
        elif isinstance(req, SchedulePhaseRequest):
            command = SchedulePhase(req.symbol, req.phase, req.at, req.interval_ms)
        else:
            command = ListFuture(req.resource_class, req.start, req.hours)
            self._command(session, req.id, command, None)
            return
        self._command(session, req.id, command, None, req.symbol)

    def _register_node(self, session: Session, req: RegisterNode) -> None:
        account = self._logged_in(session, req.id)
        if account is None:
            return
        if "provider" not in session.roles:
            self._engine_error(session, req.id, Code.ROLE_NOT_ALLOWED)
            return
        if req.resource_class not in self.exchange.engine.classes:
            # Not the code's own text, which speaks of futures: a node may
            # sell a class that has none.
            code = Code.UNKNOWN_CLASS.value
            self.exchange.metrics.rejections.labels(code).inc()
            message = "no resource class has this name"
            session.send(encode(ErrorMessage(req.id, code, message)))
            return
        node = Node(
            account,
            req.node_id,
            req.resource_class,
            req.cu_per_second_milli,
            req.model,
            {k: dict(v) for k, v in req.tiers.items()},
            session,
        )
        if not self.exchange.nodes.register(node):
            log.warning("node %s of %s refused: its id is in use", req.node_id, account)
            self._refuse(
                session, req.id, "NODE_ID_IN_USE", NODE_CODES["NODE_ID_IN_USE"]
            )
            return
        session.node = True
        log.info(
            "node %s of %s registered: %.3f CU/s of %s",
            req.node_id,
            account,
            req.cu_per_second_milli / 1000,
            req.resource_class,
        )

        def reply(events: list[Event]) -> None:
            capacity = {e.symbol: e.lots for e in events if type(e) is CapacitySet}
            # This node's own share, so that nodes of one account quote apart.
            engine = self.exchange.engine
            own = lots_of(engine, req.resource_class, req.cu_per_second_milli)
            # What is sold already: a node that starts while a lease of the
            # account lives quotes only the rest.
            sold = _spot_leases(engine, account, req.resource_class)
            ack = Ack(
                req.id, capacity=capacity, node_capacity=own, spot_leases=sold or None
            )
            session.send(encode(ack))

        self.exchange.register_capacity({(account, req.resource_class)}, reply)

    # -- helpers ----------------------------------------------------------------

    def _command(
        self,
        session: Session,
        rid: int,
        command: Command,
        order_id: str | None,
        symbol: str | None = None,
    ) -> None:
        """Submit ``command``; answer an ack with ``order_id``, or its
        rejection (``UNKNOWN_SYMBOL`` naming ``symbol``)."""

        def reply(events: list[Event]) -> None:
            rejection = _rejection(events)
            if rejection is not None:
                session.send(encode(rejection_message(rid, rejection, symbol)))
            else:
                session.send(encode(Ack(rid, order_id=order_id)))

        self.exchange.submit(Work(command=command, reply=reply))

    def _known_symbol(self, session: Session, rid: int, symbol: str | None) -> bool:
        """Whether ``symbol`` is None (every instrument) or an instrument's;
        if not, the request is refused with ``UNKNOWN_SYMBOL``."""
        if symbol is None or symbol in self.exchange.engine.instruments:
            return True
        message = f"{CODES[Code.UNKNOWN_SYMBOL]}: {symbol!r}"
        self._refuse(session, rid, Code.UNKNOWN_SYMBOL.value, message)
        return False

    def _logged_in(self, session: Session, rid: int) -> str | None:
        if session.account is None:
            self._error(session, rid, WireCode.NOT_LOGGED_IN)
        return session.account

    def _error(
        self,
        session: Session,
        rid: int | None,
        code: WireCode,
        message: str | None = None,
    ) -> None:
        self.exchange.metrics.rejections.labels(code.value).inc()
        session.send(encode(ErrorMessage(rid, code.value, message or WIRE_CODES[code])))

    def _engine_error(self, session: Session, rid: int | None, code: Code) -> None:
        self._refuse(session, rid, code.value, CODES[code])

    def _refuse(
        self, session: Session, rid: int | None, code: str, message: str
    ) -> None:
        self.exchange.metrics.rejections.labels(code).inc()
        session.send(encode(ErrorMessage(rid, code, message)))


def _channel_kind_known(name: str) -> bool:
    """Whether ``name`` is a channel of a kind the server has: a private or
    public one by its name, or ``<kind>.<symbol>`` of any symbol (whether it
    is listed is for subscribe to check; unsubscribe also takes the channel
    of an instrument delisted since)."""
    if name in PRIVATE_CHANNELS or name in PUBLIC_CHANNELS:
        return True
    prefix, dot, _ = name.partition(".")
    return prefix in PUBLIC_PREFIXES and bool(dot)


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: its code and message."""

    code: str
    message: str


class _WebSocket(web.WebSocketResponse):
    """aiohttp's websocket, whose close for a frame over `MAX_SOCKET_FRAME`
    (code 1009, which aiohttp sends without a reason) says why."""

    async def close(
        self, *, code: int = 1000, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            message = TOO_BIG_REASON
        return await super().close(code=code, message=message, drain=drain)


TOO_BIG_REASON: Final = f"frame over {MAX_SOCKET_FRAME:,} bytes".encode()
"""The reason of the close (1009) for a frame over `MAX_SOCKET_FRAME`."""


def _spot_leases(engine: Engine, account: str, resource_class: str) -> dict[str, int]:
    """The live spot leases ``account`` provides on ``resource_class``, lots by
    lease id (a spot lease is its trade's escrow until it ends)."""
    seller = engine.ledger.index(account)
    symbol = f"{resource_class}-SPOT"
    return {
        str(entry.trade_id): entry.lots
        for entry in engine.ledger.escrows.values()
        if entry.ends_at and entry.seller == seller and entry.symbol == symbol
    }


def _rejection(events: list[Event]) -> OrderRejected | CommandRejected | None:
    """The command's rejection, if it was rejected (timers never reject)."""
    for event in events:
        if type(event) is OrderRejected or type(event) is CommandRejected:
            return event
    return None


def rejection_message(
    rid: int | None,
    rejection: OrderRejected | CommandRejected,
    symbol: str | None = None,
) -> ErrorMessage:
    """The error answering a rejected command; ``UNKNOWN_SYMBOL`` names
    ``symbol``, the request's, as subscribe, cancel_all and orders name it."""
    message = rejection.message
    if rejection.code == Code.UNKNOWN_SYMBOL.value and symbol is not None:
        message = f"{message}: {symbol!r}"
    return ErrorMessage(rid, rejection.code, message)


def signature_matches(expected: str, given: str) -> bool:
    """Whether ``given`` is the hex signature ``expected``, in either case,
    compared in constant time: for a websocket login and a signed REST request.

    The bytes are compared, not the strings: `hmac.compare_digest` raises
    TypeError on a string that is not ASCII, and a client may send any text
    (a surrogate too, from a header that is not UTF-8); such a signature is
    simply wrong.
    """
    theirs = given.lower().encode("utf-8", "surrogatepass")
    return hmac.compare_digest(expected.encode(), theirs)


def _frame_bytes(data: str) -> int:
    """The size of a text frame in bytes (its UTF-8), counted only when its
    length in characters leaves any doubt."""
    if len(data) * 4 <= MAX_FRAME or len(data) > MAX_FRAME:
        return len(data)
    return len(data.encode("utf-8", "surrogatepass"))


def order_info(order: Order) -> OrderInfo:
    """An open order as the protocol shows it."""
    return OrderInfo(
        order_id=str(order.order_id),
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=SIDE_NAMES[order.side],
        type="market" if order.is_market else "limit",
        tif=TIF_NAMES[order.tif],
        price=None if order.is_market else order.price,
        qty=order.filled + order.leaves,
        filled=order.filled,
        leaves=order.leaves,
        expire_at=order.expire_at or None,
    )
