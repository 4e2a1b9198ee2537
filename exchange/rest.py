"""The REST API under ``/api/v1/``, the health route and the Prometheus metrics.

Reads go through the sequencer like everything else, so a REST answer shows
the engine between two commands, never half-way through one, and never shows
what is not yet durable.

Private routes (``/api/v1/account``, ``/api/v1/orders``, ``/api/v1/jobs``) are
signed: the headers ``X-Cux-Key``, ``X-Cux-Timestamp`` (ns since the epoch,
within 30 s of real time) and ``X-Cux-Signature``, the hex HMAC-SHA256 under
the account's secret of ``"<timestamp>\\n<METHOD>\\n<path with query>"``, with
``"\\n<body>"`` after it when the request has a body (a job's JSON).

Errors are JSON, ``{"code": "...", "message": "..."}``, with an HTTP status;
`api_errors` gives the HTTP layer's own refusals under ``/api/`` (an unknown
route, a method the route does not take, a body too large) the same shape, with
the codes of `HTTP_CODES`.

Known limitation: a request aiohttp's parser refuses before any route sees it
(a request line or a header it cannot read, a header over 8,190 bytes, a bad
``Content-Length`` or chunk size, a byte no URL may hold) is answered by
aiohttp itself with a plain-text 400, not JSON: its public API has no hook for
that answer. `ClientErrorLog` at least keeps it to one WARNING line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import msgspec
from aiohttp import web
from aiohttp.http import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from exchange import dashboard
from exchange.gateway import order_info, signature_matches
from exchange.login_limit import refusal
from exchange.openapi import OPENAPI
from exchange.protocol import WIRE_CODES, WireCode
from exchange.rest_jobs import add_job_routes
from exchange.sequencer import Work
from exchange.sessions import sign
from matching import Engine
from matching.codes import CODES, Code

if TYPE_CHECKING:
    from exchange.server import Exchange

__all__ = ["HTTP_CODES", "ClientErrorLog", "add_routes", "api_errors"]

log = logging.getLogger("cux.rest")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SIGNATURE_WINDOW = 30 * 10**9
"""How far a signed request's timestamp may be from the server's clock, in ns."""

_json = msgspec.json.Encoder()

HTTP_CODES: Final[dict[str, str]] = {
    "NOT_FOUND": "no route has this path",
    "METHOD_NOT_ALLOWED": "this route does not take this method",
    "REQUEST_TOO_LARGE": "the request body is larger than the server takes",
    "BAD_REQUEST": "the HTTP layer refused the request",
}
"""The codes of the errors the HTTP layer raises under ``/api/`` (the routes'
own errors use the websocket's and the engine's codes)."""

_HTTP_STATUS_CODES: Final = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
}


@web.middleware
async def api_errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Answer an HTTP error under ``/api/`` as JSON with a code, like every
    other error of the API; an unexpected exception is ``INTERNAL_ERROR``."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status >= 500:
            code, message = (
                WireCode.INTERNAL_ERROR.value,
                WIRE_CODES[WireCode.INTERNAL_ERROR],
            )
        else:
            code = _HTTP_STATUS_CODES.get(exc.status, "BAD_REQUEST")
            message = HTTP_CODES[code]
        response = _error(exc.status, code, message)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except (ConnectionResetError, web.RequestPayloadError) as exc:
        # The client's doing: it left, or its body broke off or was malformed
        # (a bad chunk) after the route began to read it.
        log.warning(
            "%s %s from %s: the body could not be read: %s",
            request.method,
            request.path,
            request.remote,
            exc,
        )
        return _error(400, "BAD_REQUEST", HTTP_CODES["BAD_REQUEST"])
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        code = WireCode.INTERNAL_ERROR
        return _error(500, code.value, WIRE_CODES[code])


class ClientErrorLog(logging.Filter):
    """A filter for the ``aiohttp.server`` logger: a request its parser
    refused (a client's mistake, answered 400) is logged as one WARNING line
    without a traceback, where aiohttp logs an ERROR with the whole traceback,
    so that no client can fill the log with them. Other records pass as they
    are."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError) or not 400 <= error.code < 500:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        remote = args[0] if args else "an unknown address"
        # The first line, before any quote of the request's bytes.
        first = (str(error.message).splitlines() or [""])[0]
        reason = first.split(" b'")[0].split(' b"')[0].rstrip(": ")[:200]
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = "refused a request from %s that HTTP cannot parse (%d): %s"
        record.args = (remote, error.code, reason or type(error).__name__)
        record.exc_info = None
        record.exc_text = None
        return True

    @classmethod
    def install(cls) -> None:
        """Add the filter to ``aiohttp.server``, once."""
        logger = logging.getLogger("aiohttp.server")
        if not any(isinstance(f, cls) for f in logger.filters):
            logger.addFilter(cls())


def add_routes(app: web.Application, exchange: Exchange) -> None:
    api = Api(exchange)
    app.router.add_get("/health", api.health)
    app.router.add_get("/metrics", api.metrics)
    app.router.add_get("/api/v1/openapi.json", api.openapi)
    app.router.add_get("/api/v1/instruments", api.instruments)
    app.router.add_get("/api/v1/book/{symbol}", api.book)
    app.router.add_get("/api/v1/trades/{symbol}", api.trades)
    app.router.add_get("/api/v1/candles/{symbol}", api.candles)
    app.router.add_get("/api/v1/nodes", api.nodes)
    app.router.add_get("/api/v1/account", api.account)
    app.router.add_get("/api/v1/orders", api.orders)
    add_job_routes(app, exchange, api.authenticate)
    dashboard.add_routes(app)


def _response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=_json.encode(body), status=status, content_type="application/json"
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return _response({"code": code, "message": message}, status)


def _unknown_symbol(symbol: str) -> web.Response:
    """404 ``UNKNOWN_SYMBOL`` naming ``symbol``, as the websocket names it."""
    message = f"{CODES[Code.UNKNOWN_SYMBOL]}: {symbol!r}"
    return _error(404, Code.UNKNOWN_SYMBOL.value, message)


class Api:
    """The REST handlers of one exchange."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    async def _read(self, fn: Callable[[Engine], Any]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.exchange.submit(Work(read=fn, reply=future.set_result))
        return await future

    # -- public -----------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        """``{"status", "seq"}``; with ``?state_hash=1`` also ``state_hash``, the
        engine's state hash at that ``seq`` (what ``cux replay`` prints after
        the same records). The hash is read through the sequencer and encodes
        the whole state, so it is for tests and audits, not for polling."""
        ok = self.exchange.sequencer.failed is None
        body: dict[str, Any] = {
            "status": "ok" if ok else "failed",
            "seq": self.exchange.engine.seq,
        }
        if ok and request.query.get("state_hash") == "1":
            body["seq"], body["state_hash"] = await self._read(
                lambda engine: (engine.seq, engine.state_hash())
            )
        return _response(body, 200 if ok else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        self.exchange.metrics.seq.set(self.exchange.engine.seq)
        data = generate_latest(self.exchange.metrics.registry)
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def openapi(self, request: web.Request) -> web.Response:
        return _response(OPENAPI)

    async def instruments(self, request: web.Request) -> web.Response:
        def read(engine: Engine) -> list[dict[str, Any]]:
            out = []
            for symbol, inst in sorted(engine.instruments.items()):
                spec = inst.spec
                window = inst.window
                out.append(
                    {
                        "symbol": symbol,
                        "resource_class": spec.resource_class,
                        "kind": spec.kind,
                        "lot_cu": spec.lot_cu,
                        "tick": spec.tick,
                        "taker_fee_bps": spec.taker_fee_bps,
                        "maker_fee_bps": spec.maker_fee_bps,
                        "phase": inst.phase,
                        "last_price": inst.last_price,
                        "start": window.start if window else None,
                        "end": window.end if window else None,
                        "gate_at": window.gate_at if window else None,
                        "settlement": window.settlement if window else None,
                    }
                )
            return out

        return _response({"instruments": await self._read(read)})

    async def nodes(self, request: web.Request) -> web.Response:
        """The connected provider nodes, with their CU/s and quality tiers."""
        return _response({"nodes": self.exchange.nodes.listing()})

    async def book(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        depth = _int_param(request, "depth", None, 1, 10_000)
        if isinstance(depth, web.Response):
            return depth
        marketdata = self.exchange.marketdata

        def read(engine: Engine) -> Any:
            if symbol not in engine.instruments:
                return None
            return marketdata.book_levels(symbol, depth)

        levels = await self._read(read)
        if levels is None:
            return _unknown_symbol(symbol)
        seq, bids, asks, checksum = levels
        return _response(
            {
                "symbol": symbol,
                "seq": seq,
                "bids": bids,
                "asks": asks,
                "checksum": checksum,
            }
        )

    async def trades(self, request: web.Request) -> web.Response:
        return await self._history(request, "trades")

    async def candles(self, request: web.Request) -> web.Response:
        return await self._history(request, "candles")

    async def _history(self, request: web.Request, what: str) -> web.Response:
        symbol = request.match_info["symbol"]
        limit = _int_param(request, "limit", 100, 1, 1000)
        if isinstance(limit, web.Response):
            return limit
        interval = _int_param(request, "interval", 60, 1, 86_400)
        if isinstance(interval, web.Response):
            return interval
        marketdata = self.exchange.marketdata

        assert limit is not None
        assert interval is not None

        def read(engine: Engine) -> Any:
            if symbol not in engine.instruments:
                return None
            if what == "trades":
                return marketdata.recent_trades(symbol, limit)
            if interval not in marketdata.candle_intervals:
                return ()
            return marketdata.candles(symbol, interval, limit)

        rows = await self._read(read)
        if rows is None:
            return _unknown_symbol(symbol)
        if rows == ():
            intervals = ", ".join(map(str, marketdata.candle_intervals))
            message = f"interval must be one of {intervals} seconds"
            return _error(400, WireCode.INVALID_FIELD.value, message)
        return _response({"symbol": symbol, what: rows})

    # -- private ----------------------------------------------------------------

    async def account(self, request: web.Request) -> web.Response:
        return await self._signed(request, self._account_body)

    async def orders(self, request: web.Request) -> web.Response:
        """The account's open orders; ``?symbol=`` keeps those of one
        instrument (``UNKNOWN_SYMBOL``, 404, for one that is not listed)."""
        key = self.authenticate(request, "")
        if isinstance(key, web.Response):
            return key
        symbol = request.query.get("symbol")
        body = await self._read(self._orders_body(key, symbol))
        if body is None:
            return _unknown_symbol(str(symbol))
        return _response(body)

    def _account_body(self, key: str) -> Callable[[Engine], Any]:
        def read(engine: Engine) -> dict[str, Any]:
            ledger = engine.ledger
            i = ledger.index(key)
            assert i is not None
            return {
                "account": key,
                "roles": list(ledger.roles[i]),
                "available": ledger.available[i],
                "held": ledger.held[i],
                "escrow": ledger.escrow[i],
            }

        return read

    def _orders_body(
        self, key: str, symbol: str | None
    ) -> Callable[[Engine], dict[str, Any] | None]:
        def read(engine: Engine) -> dict[str, Any] | None:
            if symbol is not None and symbol not in engine.instruments:
                return None
            number = engine.ledger.index(key)
            orders = sorted(engine.orders.values(), key=lambda o: o.order_id)
            return {
                "orders": [
                    order_info(o)
                    for o in orders
                    if o.account == number and symbol in (None, o.symbol)
                ]
            }

        return read

    async def _signed(
        self, request: web.Request, body: Callable[[str], Callable[[Engine], Any]]
    ) -> web.Response:
        key = self.authenticate(request, "")
        if isinstance(key, web.Response):
            return key
        return _response(await self._read(body(key)))

    def authenticate(self, request: web.Request, payload: str) -> str | web.Response:
        """The account that signed ``request``, or the 401 answer.

        The signature is the hex HMAC-SHA256, with the account's secret, of
        ``TIMESTAMP\nMETHOD\nPATH?QUERY``, followed by ``\nBODY`` when the
        request has a body; the timestamp (ns) must be within 30 s of the
        server's clock. A wrong signature counts against the remote address,
        like a failed websocket login (`exchange.login_limit`); a missing one,
        a timestamp that is no number of ns, or a stale one alone does not.
        """
        failed_logins = self.exchange.failed_logins
        wait = failed_logins.refused_for(request.remote)
        if wait:
            self.exchange.metrics.rate_limited.inc()
            return _error(429, WireCode.RATE_LIMITED.value, refusal(wait))
        code = WireCode.AUTH_FAILED
        key = request.headers.get("X-Cux-Key", "")
        stamp = request.headers.get("X-Cux-Timestamp", "")
        signature = request.headers.get("X-Cux-Signature", "")
        if not _ns_digits(stamp):
            # No number of ns, so never fresh: refused before anything is
            # signed (a header may hold any text, bytes that are not UTF-8
            # too), and not counted, as a missing signature is not.
            return _error(401, code.value, WIRE_CODES[code])
        account = self.exchange.settings.account(key)
        secret = account.secret if account is not None else "unknown-key"
        message = f"{stamp}\n{request.method}\n{request.path_qs}"
        if payload:
            message += f"\n{payload}"
        expected = sign(secret, message)
        fresh = abs(int(stamp) - time.time_ns()) <= SIGNATURE_WINDOW
        good = signature_matches(expected, signature)
        if not (good and fresh) or account is None:
            if signature and not (good and account is not None):
                # A wrong secret or key, not a missing signature or a stale
                # timestamp alone: what guessing a secret looks like.
                failed_logins.failed(request.remote)
            return _error(401, code.value, WIRE_CODES[code])
        return account.key


def _ns_digits(stamp: str) -> bool:
    """Whether ``stamp`` is a time in ns as ASCII digits (at most 20 of them,
    more than 64 bits hold; `int` refuses past 4,300)."""
    return 0 < len(stamp) <= 20 and stamp.isascii() and stamp.isdigit()


def _int_param(
    request: web.Request, name: str, default: int | None, low: int, high: int
) -> int | web.Response | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    # At most 19 digits: `int` refuses a string of more than 4,300.
    digits = len(raw) <= 19 and raw.isascii() and raw.isdigit()
    if not digits or not low <= int(raw) <= high:
        code = WireCode.INVALID_FIELD
        return _error(
            400, code.value, f"{name} must be a whole number from {low} to {high}"
        )
    return int(raw)
