"""`cux serve` end to end: requests the HTTP layer cannot parse, on raw sockets.

aiohttp answers them itself, before any route, with a plain-text 400 (its
public API has no hook for a JSON one; the README says so). What the server
must do: answer 400, log at most one WARNING line without a traceback (anyone
can send these, so they must not fill the log), and keep serving.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from server_harness import ServerProcess, write_config

BAD_REQUESTS: dict[str, tuple[bytes, int]] = {
    # name: (the bytes sent, how many WARNING lines aiohttp.server may log)
    # aiohttp logs a first request with no HTTP method at DEBUG: port scans.
    "garbage-request-line": (b"GARBAGE\r\n\r\n", 0),
    "header-of-100-kb": (
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        1,
    ),
    "negative-content-length": (
        b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        1,
    ),
    "bad-chunk-size": (
        b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"\r\nzz\r\nabc\r\n0\r\n\r\n",
        1,
    ),
    "raw-0xff-in-the-query": (b"GET /health?a=\xff HTTP/1.1\r\nHost: x\r\n\r\n", 1),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("http-errors")
    with ServerProcess(write_config(folder), folder / "data") as server:
        yield server


def send_raw(port: int, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection; everything the server answers
    until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def http_lines(server: ServerProcess, since: int, count: int) -> list[str]:
    """The lines of the ``aiohttp.server`` logger printed after line ``since``,
    waiting up to 2 s for ``count`` of them."""
    deadline = time.monotonic() + 2
    while True:
        lines = [line for line in server.output[since:] if "aiohttp.server" in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_a_request_http_cannot_parse_is_a_400_and_one_warning_line_at_most(
    server: ServerProcess, name: str
) -> None:
    data, warnings = BAD_REQUESTS[name]
    since = len(server.output)

    answer = send_raw(server.port, data)
    health = server.get("/health")

    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1."), answer[:200]
    assert status_line.split()[1] == b"400", answer[:200]
    lines = http_lines(server, since, warnings)
    assert len(lines) == warnings, lines
    assert all(
        " WARNING aiohttp.server: refused a request from 127.0.0.1 that HTTP "
        "cannot parse (400): " in line
        for line in lines
    ), lines
    assert "Traceback" not in server.text
    assert " ERROR " not in server.text
    assert health.status == 200
    assert health.body["status"] == "ok"


def test_a_job_body_broken_off_is_one_warning_line_and_no_traceback(
    server: ServerProcess,
) -> None:
    since = len(server.output)

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
        )
        time.sleep(0.2)  # the route now waits for the rest of the body

    deadline = time.monotonic() + 5
    while not any("the body could not be read" in line for line in server.output):
        assert time.monotonic() < deadline, server.text
        time.sleep(0.02)
    lines = [line for line in server.output[since:] if " cux.rest: " in line]
    assert len(lines) == 1
    assert " WARNING cux.rest: POST /api/v1/jobs from 127.0.0.1: the body " in lines[0]
    assert "Traceback" not in server.text
    assert server.get("/health").status == 200
