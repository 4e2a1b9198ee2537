"""The REST routes of jobs: the same as the websocket's, signed like the others.

- ``POST /api/v1/jobs``: a job, the JSON of ``submit_job`` without ``op`` and
  ``id``; answers ``{"job_id": "…"}`` (201) once the job is recorded.
- ``GET /api/v1/jobs/{job_id}?offset=&limit=``: the job and a page of results,
  as ``get_job`` answers it (``job``, ``offset``, ``results``, ``next_offset``);
  ``offset`` 0 to 1,024 and ``limit`` 1 to 256, as on the websocket, else
  ``INVALID_FIELD`` (400).
  A job id not in the server's form (digits, no sign, no leading zero, at most
  18) is ``INVALID_FIELD`` (400), as on the websocket; a well-formed one of no
  job of the account ``UNKNOWN_JOB`` (404).
- ``GET /api/v1/jobs``: the account's jobs still kept, newest first.
- ``DELETE /api/v1/jobs/{job_id}``: cancel it.
- ``GET /api/v1/jobs/recent``: public, the latest jobs without their accounts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from exchange.dispatch import JobRefused
from exchange.dispatch_jobs import JobRun
from exchange.protocol import MAX_FRAME, WireCode
from exchange.protocol_base import parse_digits
from exchange.protocol_jobs import MAX_JOB_INPUTS, MAX_PAGE, SubmitJob

if TYPE_CHECKING:
    from exchange.server import Exchange

__all__ = ["add_job_routes"]

Authenticate = Callable[[web.Request, str], "str | web.Response"]

_json = msgspec.json.Encoder()
_submit = msgspec.json.Decoder(SubmitJob)


def add_job_routes(
    app: web.Application, exchange: Exchange, authenticate: Authenticate
) -> None:
    routes = JobRoutes(exchange, authenticate)
    app.router.add_post("/api/v1/jobs", routes.submit)
    app.router.add_get("/api/v1/jobs", routes.mine)
    app.router.add_get("/api/v1/jobs/recent", routes.recent)
    app.router.add_get("/api/v1/jobs/{job_id}", routes.get)
    app.router.add_delete("/api/v1/jobs/{job_id}", routes.cancel)


def _response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=_json.encode(body), status=status, content_type="application/json"
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return _response({"code": code, "message": message}, status)


class JobRoutes:
    def __init__(self, exchange: Exchange, authenticate: Authenticate) -> None:
        self.exchange = exchange
        self.authenticate = authenticate

    async def submit(self, request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_FRAME:
            return _error(
                413, WireCode.FRAME_TOO_LARGE.value, "a job is at most 64 KiB"
            )
        # The bytes, decoded here as UTF-8 whatever the Content-Type says: a
        # charset aiohttp does not know, or another encoding, is no job.
        body = await request.read()
        if len(body) > MAX_FRAME:
            return _error(
                413, WireCode.FRAME_TOO_LARGE.value, "a job is at most 64 KiB"
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _error(
                400,
                WireCode.INVALID_FIELD.value,
                f"the body is not UTF-8: byte {body[exc.start]:#04x} at offset "
                f"{exc.start}",
            )
        key = self.authenticate(request, text)
        if isinstance(key, web.Response):
            return key
        if not text.strip():
            return _error(400, WireCode.INVALID_FIELD.value, "the body is empty")
        try:
            raw = msgspec.json.decode(text)
            if not isinstance(raw, dict):
                raise msgspec.ValidationError("a job is a JSON object")
            req = _submit.decode(
                msgspec.json.encode({**raw, "op": "submit_job", "id": 0})
            )
        except msgspec.ValidationError as exc:
            # First: a ValidationError is a DecodeError too, yet the body is JSON.
            return _error(400, WireCode.INVALID_FIELD.value, str(exc))
        except msgspec.DecodeError as exc:
            message = f"the body is not JSON: {exc}"
            return _error(400, WireCode.INVALID_FIELD.value, message)
        except RecursionError:
            # JSON nested deeper than the decoder goes, as the websocket's
            # BAD_FRAME: the client's doing, never a 500.
            message = "the body is not JSON: nested deeper than the server reads"
            return _error(400, WireCode.INVALID_FIELD.value, message)
        outcome: asyncio.Future[JobRun | JobRefused] = (
            asyncio.get_running_loop().create_future()
        )
        self.exchange.dispatcher.submit(key, req, outcome.set_result)
        result = await outcome
        if isinstance(result, JobRefused):
            return _error(400, result.code, result.message)
        return _response({"job_id": str(result.job_id)}, 201)

    async def get(self, request: web.Request) -> web.Response:
        offset = parse_digits(request.query.get("offset", "0"))
        limit = parse_digits(request.query.get("limit", "64"))
        bad_page = None
        if (
            offset is None
            or limit is None
            or not 0 <= offset <= MAX_JOB_INPUTS
            or not 1 <= limit <= MAX_PAGE
        ):
            # The websocket's get_job bounds: checked before the job is
            # looked up, as the websocket checks its fields.
            bad_page = _error(
                400,
                WireCode.INVALID_FIELD.value,
                f"offset is 0 to {MAX_JOB_INPUTS}, limit 1 to {MAX_PAGE}",
            )
        run = self._own(request, bad_page)
        if isinstance(run, web.Response):
            return run
        assert offset is not None
        assert limit is not None
        end = min(len(run.texts), offset + limit)
        return _response(
            {
                "job": run.message(),
                "offset": offset,
                "results": run.results(offset, limit),
                "next_offset": end if end < len(run.texts) else None,
            }
        )

    async def cancel(self, request: web.Request) -> web.Response:
        run = self._own(request)
        if isinstance(run, web.Response):
            return run
        if not self.exchange.dispatcher.cancel(run):
            return _error(409, "JOB_ENDED", "the job has already ended")
        return _response({"job_id": str(run.job_id), "status": "cancelled"})

    async def mine(self, request: web.Request) -> web.Response:
        key = self.authenticate(request, "")
        if isinstance(key, web.Response):
            return key
        runs = [r for r in self.exchange.dispatcher.jobs.values() if r.account == key]
        return _response(
            {"jobs": [r.message() for r in sorted(runs, key=lambda r: -r.job_id)]}
        )

    async def recent(self, request: web.Request) -> web.Response:
        return _response({"jobs": self.exchange.dispatcher.recent()})

    def _own(
        self, request: web.Request, refused: web.Response | None = None
    ) -> JobRun | web.Response:
        """The account's job the path names, or the answer: 401 unsigned,
        then ``refused`` (a bad query) if given, 400 for an id not in the
        server's form, 404 for no such job of the account."""
        key = self.authenticate(request, "")
        if isinstance(key, web.Response):
            return key
        if refused is not None:
            return refused
        text = request.match_info["job_id"]
        number = parse_digits(text)
        if number is None:
            # As the websocket's get_job and cancel_job refuse it.
            message = (
                "job_id must be an id as the server writes it (digits, no sign, "
                f"no leading zero, at most 18), got {text!r}"
            )
            return _error(400, WireCode.INVALID_FIELD.value, message)
        run = self.exchange.dispatcher.job_of(key, number)
        if run is None:
            return _error(404, "UNKNOWN_JOB", self.exchange.dispatcher.unknown_job())
        return run
