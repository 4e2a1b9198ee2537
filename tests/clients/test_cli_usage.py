"""A person's mistakes on the client command line: bad flags, unusable input
files and server urls each give one line on stderr and exit 2, before anything
is sent (docs/clients.md's exit codes), and a server that is not cux is named as
such. No test here needs a cux server: the url given is one where none listens,
or a stand-in that is not cux.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from msgspec.inspect import IntType, StructType, type_info
from server_harness import ROOT

from clients.cli_input import (
    UsageError,
    client_order_id,
    identifier,
    positive,
    read_inputs,
    seconds,
    whole,
)
from clients.jobs import MAX_BUDGET_CU, MAX_INPUT_CHARS, MAX_JOB_INPUTS
from exchange.protocol_jobs import MAX_INPUT_CHARS as SERVER_MAX_INPUT_CHARS
from exchange.protocol_jobs import MAX_JOB_INPUTS as SERVER_MAX_JOB_INPUTS
from exchange.protocol_jobs import SubmitJob

CUX = str(Path(sys.executable).parent / "cux")
NOBODY = "127.0.0.1:9"  # the discard port: no server listens there
LOGIN = ("--url", NOBODY, "--key", "alice", "--secret", "alice-secret")
JOB = ("--budget-cu", "1", "--max-price", "1000", *LOGIN)


def cux(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cux`` with ``args``, with no CUX_ variable and no config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUX_")}
    env.pop("XDG_CONFIG_HOME", None)
    env["HOME"] = str(ROOT / "nonexistent-home")
    done = subprocess.run(
        [CUX, *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The error a command printed, checked to be a single line and no
    traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# -- config files, through the command ----------------------------------------------


def test_a_config_file_that_is_not_utf8_exits_2_with_one_line_naming_it(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bad4.toml"
    config.write_bytes(b'key = "\xff"\n')

    done = cux("balance", "--config", str(config))

    assert done.returncode == 2
    assert one_line(done) == (
        f"cux balance: {config} is not UTF-8 text (byte 7 is 0xff)"
    )


# -- job files, through the command -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad3.json", b"not json", "bad3.json is not JSON: Expecting value at line 1"),
        ("bin.txt", bytes(range(128, 256)), "bin.txt is not UTF-8 text (byte 0 is"),
        ("blank.txt", b"\n  \n\n", "blank.txt holds no texts"),
        ("bad.json", b'{"a": 1}', "bad.json must hold a list of strings"),
    ],
)
def test_an_unusable_job_file_exits_2_with_one_line_naming_it(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)

    done = cux("job", "submit", str(tmp_path / name), *JOB)

    assert done.returncode == 2
    assert one_line(done).startswith(f"cux job submit: {tmp_path / name}")
    assert message.split(" ", 1)[1] in one_line(done)


@pytest.mark.parametrize("blank", ["", " \t\n "])
def test_a_json_job_file_with_a_blank_text_exits_2_naming_it(
    tmp_path: Path, blank: str
) -> None:
    path = tmp_path / "texts.json"
    path.write_text(json.dumps(["A fox.", blank, "Snow."]), encoding="utf-8")

    done = cux("job", "submit", str(path), *JOB)

    assert done.returncode == 2
    assert one_line(done) == (
        f"cux job submit: text 2 of {path} is empty or only whitespace: a job "
        "embeds text, remove it"
    )


def test_a_missing_job_file_exits_2_and_stdin_is_named_stdin(tmp_path: Path) -> None:
    missing = cux("job", "submit", str(tmp_path / "nope.txt"), *JOB)
    empty = cux("job", "submit", "-", *JOB, stdin=b"\n\n")
    binary = cux("job", "submit", "-", *JOB, stdin=b"\xff\xfe")

    assert (missing.returncode, empty.returncode, binary.returncode) == (2, 2, 2)
    assert one_line(missing) == f"cux job submit: no such file: {tmp_path}/nope.txt"
    assert one_line(empty) == "cux job submit: stdin holds no texts"
    assert (
        one_line(binary) == "cux job submit: stdin is not UTF-8 text (byte 0 is 0xff)"
    )


# -- job files, read directly -------------------------------------------------------


def test_read_inputs_takes_lines_or_a_json_list_and_skips_a_byte_order_mark(
    tmp_path: Path,
) -> None:
    lines = tmp_path / "t.txt"
    lines.write_text("\ufeff one \n\n two\n", encoding="utf-8")
    listed = tmp_path / "t.json"
    listed.write_bytes(b'\xef\xbb\xbf["a", " b "]')

    assert read_inputs(str(lines)) == ["one", "two"]
    assert read_inputs(str(listed)) == ["a", " b "]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("e.json", "[]", "e.json holds no texts"),
        ("d.json", "[" * 100_000, "d.json is not a list of strings: nested too deep"),
        ("s.json", '["ok", "\\ud800"]', "text 2 of s.json is not valid Unicode"),
        ("n.json", '["a", 3]', "n.json must hold a list of strings"),
        ("l.txt", "short\n\n" + "x" * 9000, "line 3 of l.txt is 9,000 characters"),
        ("m.txt", "y\n" * 1025, "m.txt holds 1,025 texts; a job takes at most 1,024"),
        ("dir", None, "dir is a folder, not a file of texts"),
    ],
)
def test_read_inputs_refuses_what_no_job_can_take(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    content: str | None,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    if content is None:
        Path(name).mkdir()
    else:
        Path(name).write_text(content, encoding="utf-8", errors="surrogatepass")

    with pytest.raises(UsageError) as refused:
        read_inputs(name)

    assert str(refused.value).startswith(message)


def test_read_inputs_names_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b" \n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)

    with pytest.raises(UsageError, match=r"^stdin holds no texts$"):
        read_inputs("-")


def test_the_clients_job_limits_are_the_servers() -> None:
    assert (MAX_JOB_INPUTS, MAX_INPUT_CHARS) == (
        SERVER_MAX_JOB_INPUTS,
        SERVER_MAX_INPUT_CHARS,
    )
    info = type_info(SubmitJob)
    assert isinstance(info, StructType)
    [budget] = [f.type for f in info.fields if f.name == "budget_cu"]
    assert isinstance(budget, IntType)
    assert budget.le == MAX_BUDGET_CU


# -- flags --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("trade", "buy", "cpu-SPOT", "3", "--wait", "-1"),
            "argument --wait: must be a number of seconds above 0, got '-1'",
        ),
        (
            ("book", "cpu-SPOT", "--duration", "-3"),
            "argument --duration: must be a number of seconds above 0, got '-3'",
        ),
        (
            ("book", "cpu-SPOT", "--timeout", "0"),
            "argument --timeout: must be a number of seconds above 0, got '0'",
        ),
        (
            ("book", "cpu-SPOT", "--trades", "5000"),
            "argument --trades: must be from 1 to 1,000, got 5000",
        ),
        (
            ("trade", "buy", "cpu-SPOT", "1", "--price", str(2**63)),
            f"argument --price: must be at most {2**63 - 1}, got {2**63}",
        ),
        (
            ("job", "submit", "t.txt", "--budget-cu", "0"),
            "argument --budget-cu: must be from 1 to 1,000,000,000, got 0",
        ),
        (
            (
                "job",
                "submit",
                "t.txt",
                "--budget-cu",
                "1",
                "--min-reputation-bps",
                "-5",
            ),
            "argument --min-reputation-bps: must be from 0 to 10,000, got -5",
        ),
    ],
)
def test_a_flag_out_of_its_range_exits_2_naming_the_flag(
    args: tuple[str, ...], message: str
) -> None:
    done = cux(*args, *LOGIN)

    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(f"error: {message}")


@pytest.mark.parametrize(("text", "value"), [("0.5", 0.5), ("3", 3.0), ("1e3", 1000.0)])
def test_seconds_takes_a_positive_finite_number(text: str, value: float) -> None:
    assert seconds(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "-0.1", "nan", "inf", "-inf", "soon"])
def test_seconds_refuses_zero_negative_and_non_finite_numbers(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text)):
        seconds(text)


def test_whole_numbers_keep_to_their_range() -> None:
    assert positive("1") == 1
    assert positive(str(2**63 - 1)) == 2**63 - 1
    assert whole(0, 10)("0") == 0
    for parse, text in [(positive, "0"), (positive, "-3"), (whole(0, 10), "11")]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
    with pytest.raises(argparse.ArgumentTypeError, match="whole number"):
        positive("1.5")


@pytest.mark.parametrize("text", [" 5", "5 ", "1_000", "+5", "\u0663", "\uff15", "5.0"])
def test_whole_numbers_are_ascii_digits_only(text: str) -> None:
    # int() reads all of these: a space, an underscore, a plus sign, the
    # Arabic-Indic three and the full-width five.
    with pytest.raises(argparse.ArgumentTypeError, match="must be a whole number"):
        positive(text)


@pytest.mark.parametrize("text", [" 5", "1_0", "\u0663", "+nan", "infinity"])
def test_seconds_are_ascii_digits_only(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="must be a number of seconds"):
        seconds(text)


def test_a_whole_number_of_thousands_of_digits_is_out_of_range_not_a_crash() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"\(5,000 digits\)"):
        positive("9" * 5000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("trade", "buy", "cpu-SPOT", "1_000"), "argument QTY: must be a whole number"),
        (
            ("trade", "buy", "cpu-SPOT", "1", "--price", "\u0661\u0662"),
            "argument --price: must be a whole number, got '\u0661\u0662'",
        ),
        (
            ("amend", "5", "--qty", " 5"),
            "argument --qty: must be a whole number, got ' 5'",
        ),
    ],
)
def test_a_number_flag_in_other_than_ascii_digits_exits_2(
    args: tuple[str, ...], message: str
) -> None:
    done = cux(*args, *LOGIN)

    assert done.returncode == 2
    assert f"error: {message}" in done.stderr.strip().splitlines()[-1]


NOT_AN_ID = "must be an id as the server writes it (digits with no leading zero"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("amend", "abc", "--qty", "1"), f"argument ORDER_ID: {NOT_AN_ID}"),
        (("cancel", "5", "01"), f"argument ORDER_ID: {NOT_AN_ID}"),
        (("job", "get", "+1"), f"argument ID: {NOT_AN_ID}"),
        (("job", "cancel", "1" * 19), f"argument ID: {NOT_AN_ID}"),
        (
            ("trade", "buy", "cpu-SPOT", "1", "--client-order-id", "é"),
            "argument --client-order-id: must be 1 to 64 printable ASCII "
            "characters, got 'é'",
        ),
        (
            ("trade", "buy", "cpu-SPOT", "1", "--client-order-id", "x" * 65),
            "argument --client-order-id: must be 1 to 64 printable ASCII",
        ),
    ],
)
def test_an_id_the_server_could_not_take_exits_2_before_anything_is_sent(
    args: tuple[str, ...], message: str
) -> None:
    done = cux(*args, *LOGIN)

    assert done.returncode == 2
    assert f"error: {message}" in done.stderr.strip().splitlines()[-1]


def test_ids_and_client_order_ids_in_the_servers_form_are_taken() -> None:
    assert [identifier(t) for t in ("0", "7", "9" * 18)] == ["0", "7", "9" * 18]
    assert client_order_id(" a~") == " a~"
    assert client_order_id("x" * 64) == "x" * 64


@pytest.mark.parametrize(
    "prices",
    [(), ("--max-price", "1000", "--lease", "4")],
)
def test_job_submit_takes_max_price_or_lease_exactly_one(
    tmp_path: Path, prices: tuple[str, ...]
) -> None:
    texts = tmp_path / "t.txt"
    texts.write_text("hello\n")

    done = cux("job", "submit", str(texts), "--budget-cu", "1", *prices, *LOGIN)

    assert done.returncode == 2
    assert one_line(done) == (
        "cux job submit: give --max-price (buy spot lots up to it) or --lease "
        "(run on leases you hold), one of the two"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cancel",), "cux cancel: give order ids, or --all"),
        (
            ("cancel", "5", "--symbol", "cpu-SPOT"),
            "cux cancel: --symbol goes with --all",
        ),
        (("amend", "5"), "cux amend: give --qty, --price or both"),
    ],
)
def test_a_command_missing_what_it_acts_on_exits_2(
    args: tuple[str, ...], message: str
) -> None:
    done = cux(*args, *LOGIN)

    assert done.returncode == 2
    assert one_line(done) == message


# -- server urls --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::1", "an address in [ ] must be a whole IPv6 address"),
        ("ftp://127.0.0.1:8700", "the scheme must be ws, wss, http or https"),
        ("ws://", "it names no host"),
        (":8700", "it names no host"),
        ("ws://127.0.0.1:port", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:99999", "the port must be a number from 1 to 65535"),
        ("ws://alice:pw@127.0.0.1:8700", "the account goes in --key and --secret"),
        ("127.0.0.1:8700/ws?x=1", "a server url has no ?query or #fragment"),
    ],
)
def test_a_bad_url_exits_2_with_one_line_saying_why(url: str, why: str) -> None:
    done = cux("trade", "buy", "cpu-SPOT", "3", *LOGIN, "--url", url)

    assert done.returncode == 2
    assert one_line(done).startswith(f"cux trade: not a cux server url: {url!r} ({why}")


class NotCux:
    """An HTTP server that is not cux, in a thread: its ``/ws`` is a websocket
    that says something other than hello; any other path is 404."""

    def __init__(self) -> None:
        self.port = _free_port()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> NotCux:
        self._thread.start()
        assert self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        async def ws(request: web.Request) -> web.WebSocketResponse:
            socket = web.WebSocketResponse()
            await socket.prepare(request)
            await socket.send_str("welcome, stranger")
            await socket.close()
            return socket

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/ws", ws)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()

        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(start())
        self._started.set()
        self._loop.run_forever()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def not_cux() -> Iterator[NotCux]:
    with NotCux() as server:
        yield server


def test_no_server_on_the_port_exits_2_saying_nothing_listens_there() -> None:
    done = cux("balance", *LOGIN)

    assert done.returncode == 2
    assert one_line(done) == (
        "cux balance: no cux server at ws://127.0.0.1:9/ws: "
        "nothing listens on port 9 of 127.0.0.1"
    )


def test_an_unknown_host_name_exits_2_naming_it() -> None:
    done = cux("book", "cpu-SPOT", "--once", "--url", "nosuchhost.invalid:8700")

    assert done.returncode == 2
    assert one_line(done) == (
        "cux book: no cux server at ws://nosuchhost.invalid:8700/ws: "
        "the host name nosuchhost.invalid is not known"
    )


def test_wss_to_a_server_without_tls_exits_2_saying_the_handshake_failed(
    not_cux: NotCux,
) -> None:
    done = cux("book", "cpu-SPOT", "--once", "--url", f"wss://127.0.0.1:{not_cux.port}")

    assert done.returncode == 2
    assert one_line(done).startswith(
        f"cux book: no cux server at wss://127.0.0.1:{not_cux.port}/ws: "
        "the TLS handshake failed"
    )


@pytest.mark.parametrize("flag", ["--url", "--key", "--secret"])
def test_an_empty_connection_flag_exits_2_and_is_not_replaced_by_the_environment(
    flag: str,
) -> None:
    given = dict(zip(LOGIN[::2], LOGIN[1::2], strict=True))
    given[flag] = ""

    done = cux("balance", *[part for pair in given.items() for part in pair])

    assert done.returncode == 2
    assert one_line(done) == (
        f"cux balance: {flag} is empty: give one, or leave the flag out"
    )


def test_a_web_server_that_is_not_cux_exits_2_saying_so(not_cux: NotCux) -> None:
    url = f"http://127.0.0.1:{not_cux.port}/elsewhere"

    done = cux("book", "cpu-SPOT", "--once", "--url", url)

    assert done.returncode == 2
    assert one_line(done) == (
        f"cux book: no cux server at ws://127.0.0.1:{not_cux.port}/elsewhere/ws: "
        "its websocket handshake got HTTP 404"
    )


def test_a_websocket_that_sends_no_hello_exits_2_saying_so(not_cux: NotCux) -> None:
    done = cux("book", "cpu-SPOT", "--once", "--url", f"127.0.0.1:{not_cux.port}")

    assert done.returncode == 2
    assert "not a cux server: its first message is no hello" in one_line(done)
