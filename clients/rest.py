"""The REST API under ``/api/v1/``: reference data, history, the account, jobs.

```python
async with RestClient("http://127.0.0.1:8700", "alice", "alice-secret") as rest:
    book = await rest.book("cpu-SPOT")      # symbol, seq, bids, asks, checksum
    trades = await rest.trades("cpu-SPOT")  # [TradeMessage, ...], oldest first
    account = await rest.account()          # signed
    job_id = await rest.submit_job("cpu-SPOT", ["a text"], budget_cu=5, max_price=1500)
    job = await rest.job(job_id)            # a clients.messages.Job, all pages
```

Signed routes carry ``X-Cux-Key``, ``X-Cux-Timestamp`` and ``X-Cux-Signature``
(`clients.auth.rest_headers`). An error answer raises the `clients.errors`
exception of its ``code``, like the websocket client.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiohttp
import msgspec

from clients.auth import rest_headers
from clients.config import Endpoint
from clients.errors import ConfigError, ServerError, error_for
from clients.messages import Job, JobOutput, JobUpdate, OpenOrder, TradeMessage

__all__ = ["RestClient"]


class _Trades(msgspec.Struct):
    trades: list[TradeMessage]


class _Orders(msgspec.Struct):
    orders: list[OpenOrder]


class _JobPage(msgspec.Struct):
    job: JobUpdate
    offset: int
    results: list[JobOutput | None]
    next_offset: int | None


class _Jobs(msgspec.Struct):
    jobs: list[JobUpdate]


class RestClient:
    """Calls the REST API of the server at ``url`` (any form `Endpoint` takes).

    Args:
        key, secret: the account, for the signed routes (None: public only).
        timeout: seconds per request.
    """

    def __init__(
        self,
        url: str,
        key: str | None = None,
        secret: str | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.base = Endpoint.parse(url).http
        self.key = key
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RestClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- public -----------------------------------------------------------------

    async def instruments(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self.get("/api/v1/instruments"))[
            "instruments"
        ]
        return result

    async def book(self, symbol: str, depth: int | None = None) -> dict[str, Any]:
        """The book: ``seq`` (the full-depth channel's), ``bids``, ``asks``
        (``[price, qty]``, best first) and ``checksum``."""
        query = "" if depth is None else f"?depth={depth}"
        result: dict[str, Any] = await self.get(f"/api/v1/book/{symbol}{query}")
        return result

    async def trades(self, symbol: str, limit: int = 100) -> list[TradeMessage]:
        """The last ``limit`` trades (at most 1,000), oldest first."""
        raw = await self.get(f"/api/v1/trades/{symbol}?limit={limit}", raw=True)
        return msgspec.json.decode(raw, type=_Trades).trades

    # -- signed -----------------------------------------------------------------

    async def account(self) -> dict[str, Any]:
        """``account``, ``roles``, ``available``, ``held``, ``escrow``."""
        result: dict[str, Any] = await self.get("/api/v1/account", signed=True)
        return result

    async def orders(self) -> list[OpenOrder]:
        raw = await self.get("/api/v1/orders", signed=True, raw=True)
        return msgspec.json.decode(raw, type=_Orders).orders

    async def submit_job(
        self,
        symbol: str,
        inputs: list[str],
        *,
        budget_cu: int,
        tier: str = "exact",
        max_price: int | None = None,
        leases: list[int] | None = None,
        min_reputation_bps: int | None = None,
    ) -> str:
        """``POST /api/v1/jobs``: as `clients.Client.submit_job`; the job id."""
        fields = {
            "symbol": symbol,
            "inputs": inputs,
            "budget_cu": budget_cu,
            "tier": tier,
            "max_price": max_price,
            "leases": leases,
            "min_reputation_bps": min_reputation_bps,
        }
        body = {k: v for k, v in fields.items() if v is not None}
        result = await self.request("POST", "/api/v1/jobs", signed=True, json=body)
        return str(result["job_id"])

    async def job(self, job_id: str) -> Job:
        """``GET /api/v1/jobs/{job_id}``, every page of its results."""
        offset: int | None = 0
        outputs: list[JobOutput | None] = []
        while offset is not None:
            path = f"/api/v1/jobs/{job_id}?offset={offset}&limit=256"
            raw = await self.get(path, signed=True, raw=True)
            page = msgspec.json.decode(raw, type=_JobPage)
            outputs.extend(page.results)
            offset = page.next_offset
        fields = msgspec.structs.asdict(page.job)
        del fields["ts"]
        return Job(**fields, results=outputs)

    async def jobs(self) -> list[JobUpdate]:
        """``GET /api/v1/jobs``: the account's jobs the server keeps, newest
        first, without results."""
        raw = await self.get("/api/v1/jobs", signed=True, raw=True)
        return msgspec.json.decode(raw, type=_Jobs).jobs

    async def cancel_job(self, job_id: str) -> None:
        """``DELETE /api/v1/jobs/{job_id}``."""
        await self.request("DELETE", f"/api/v1/jobs/{job_id}", signed=True)

    # -- plumbing ---------------------------------------------------------------

    async def get(
        self, path_qs: str, *, signed: bool = False, raw: bool = False
    ) -> Any:
        return await self.request("GET", path_qs, signed=signed, raw=raw)

    async def request(
        self,
        method: str,
        path_qs: str,
        *,
        signed: bool = False,
        json: Any = None,
        raw: bool = False,
    ) -> Any:
        """Send a request; its decoded JSON answer (its bytes with ``raw``).

        Raises:
            ServerError (a subclass by code): an error answer.
            ConfigError: a signed route without a key and secret.
        """
        if self._session is None:
            raise ConfigError("use RestClient with `async with`")
        text = "" if json is None else msgspec.json.encode(json).decode()
        headers: dict[str, str] = {}
        if signed:
            if self.key is None or self._secret is None:
                raise ConfigError("a signed route needs a key and a secret")
            headers = rest_headers(self.key, self._secret, method, path_qs, text)
        data = text.encode() if text else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self._session.request(
            method, self.base + path_qs, headers=headers, data=data
        ) as response:
            body = await response.read()
            if response.status >= 400:
                raise _error(response.status, body)
        return body if raw else msgspec.json.decode(body)


def _error(status: int, body: bytes) -> ServerError:
    try:
        decoded = msgspec.json.decode(body)
        return error_for(str(decoded["code"]), str(decoded["message"]))
    except (msgspec.DecodeError, KeyError, TypeError):
        return ServerError(f"HTTP_{status}", body[:200].decode(errors="replace"))
