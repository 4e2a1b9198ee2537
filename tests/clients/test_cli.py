"""The client commands run as ``.venv/bin/cux`` subprocesses against a real
``cux serve``: their tables, their ``--json``, their exit codes, and where they
take the server and the credentials from (flags, environment, config file).

The tests share a server; each takes a desk (`desk_config`) of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from server_harness import ROOT, ServerProcess, desk_config, write_config

from clients import Client

CUX = str(Path(sys.executable).parent / "cux")
DESKS = 24
_desks = iter(range(DESKS))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("cli")
    extra = "".join(desk_config(f"cli{i}") for i in range(DESKS))
    with ServerProcess(write_config(folder, extra=extra), folder / "data") as server:
        yield server


@dataclass(frozen=True)
class Desk:
    symbol: str
    buyer: str
    seller: str


@pytest.fixture
def desk() -> Desk:
    name = f"cli{next(_desks)}"
    return Desk(f"{name}-SPOT", f"{name}-buyer", f"{name}-seller")


def cux(
    *args: str, env: dict[str, str] | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cux`` with ``args``; the environment holds no CUX_ variable but
    those in ``env``, and HOME is ``home`` (so no user config file is read)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CUX_")}
    base.pop("XDG_CONFIG_HOME", None)
    base["HOME"] = str(home or ROOT / "nonexistent-home")
    return subprocess.run(
        [CUX, *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def as_(server: ServerProcess, key: str) -> list[str]:
    return ["--url", server.url, "--key", key, "--secret", f"{key}-secret"]


def place(
    server: ServerProcess, key: str, orders: list[tuple[str, str, int, int]]
) -> list[str]:
    """Place limit orders with the SDK (setting a scene is not what these
    tests test, and each ``cux`` process costs a second); their ids."""

    async def run() -> list[str]:
        async with Client(server.url, key, f"{key}-secret") as client:
            return [(await client.place(*order)).order_id for order in orders]

    return asyncio.run(run())


def ok_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- balance and credentials --------------------------------------------------------


def test_balance_prints_a_table_in_credits_and_json_in_ucr(
    server: ServerProcess, desk: Desk
) -> None:
    table = cux("balance", *as_(server, desk.buyer))
    assert table.returncode == 0, table.stderr
    assert f"Balance of {desk.buyer}" in table.stdout
    assert "1,000.000000" in table.stdout
    assert "1000000000" in table.stdout

    data = ok_json(cux("balance", "--json", *as_(server, desk.buyer)))
    assert data == {
        "account": desk.buyer,
        "available": 1_000_000_000,
        "held": 0,
        "escrow": 0,
    }


def test_a_closed_stdout_ends_the_command_quietly_with_141(
    server: ServerProcess, desk: Desk
) -> None:
    read, write = os.pipe()
    os.close(read)  # as `| head` does once it has read enough
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUX_")}
    env["HOME"] = str(ROOT / "nonexistent-home")
    with os.fdopen(write, "wb") as stdout:
        done = subprocess.run(
            [CUX, "balance", "--json", *as_(server, desk.buyer)],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )

    assert (done.returncode, done.stderr) == (141, "")


def test_credentials_come_from_the_environment(
    server: ServerProcess, desk: Desk
) -> None:
    env = {
        "CUX_URL": server.http,
        "CUX_KEY": desk.seller,
        "CUX_SECRET": f"{desk.seller}-secret",
    }
    assert ok_json(cux("balance", "--json", env=env))["account"] == desk.seller


def test_credentials_come_from_the_config_file_and_its_profiles(
    server: ServerProcess, desk: Desk, tmp_path: Path
) -> None:
    folder = tmp_path / ".config" / "cux"
    folder.mkdir(parents=True)
    (folder / "client.toml").write_text(
        f'url = "{server.url}"\n'
        f'key = "{desk.buyer}"\nsecret = "{desk.buyer}-secret"\n'
        f'[profiles.seller]\nkey = "{desk.seller}"\nsecret = "{desk.seller}-secret"\n',
        encoding="utf-8",
    )
    assert ok_json(cux("balance", "--json", home=tmp_path))["account"] == desk.buyer
    seller = cux("balance", "--json", "--profile", "seller", home=tmp_path)
    assert ok_json(seller)["account"] == desk.seller
    # A flag beats the environment, which beats the file.
    env = {"CUX_KEY": "nobody", "CUX_SECRET": "x"}
    flagged = cux(
        "balance",
        "--json",
        "--key",
        desk.seller,
        "--secret",
        f"{desk.seller}-secret",
        env=env,
        home=tmp_path,
    )
    assert ok_json(flagged)["account"] == desk.seller


def test_missing_credentials_exit_2_with_where_to_put_them(
    server: ServerProcess,
) -> None:
    done = cux("balance", "--url", server.url)
    assert done.returncode == 2
    assert "needs a key and a secret" in done.stderr
    assert "CUX_KEY" in done.stderr


def test_a_wrong_secret_exits_1_with_auth_failed(server: ServerProcess) -> None:
    done = cux("balance", "--url", server.url, "--key", "alice", "--secret", "nope")
    assert done.returncode == 1
    assert (
        done.stderr.strip() == "cux balance: AUTH_FAILED: unknown key or bad signature"
    )


def test_an_unreachable_server_exits_2(tmp_path: Path) -> None:
    done = cux("book", "cpu-SPOT", "--once", "--url", "127.0.0.1:9")
    assert done.returncode == 2
    assert done.stderr.startswith("cux book: ")


# -- trading ------------------------------------------------------------------------


def test_trade_rests_a_limit_order_and_orders_lists_it(
    server: ServerProcess, desk: Desk
) -> None:
    table = cux(
        "trade", "buy", desk.symbol, "10", "--price", "1200", *as_(server, desk.buyer)
    )
    assert table.returncode == 0, table.stderr
    assert f"buy 10 {desk.symbol} @ 1200" in table.stdout
    assert "new" in table.stdout
    assert "0 lots, 10 open" in table.stdout

    listed = ok_json(cux("orders", "--json", *as_(server, desk.buyer)))["orders"]
    assert [(o["side"], o["price"], o["leaves"]) for o in listed] == [("buy", 1200, 10)]
    text = cux("orders", *as_(server, desk.buyer)).stdout
    assert "Open orders" in text
    assert desk.symbol in text


def test_trade_that_crosses_reports_its_fills_in_json(
    server: ServerProcess, desk: Desk
) -> None:
    resting = ok_json(
        cux(
            "trade",
            "sell",
            desk.symbol,
            "4",
            "--price",
            "1500",
            "--json",
            *as_(server, desk.seller),
        )
    )
    order = ok_json(
        cux("trade", "buy", desk.symbol, "6", "--json", *as_(server, desk.buyer))
    )
    # The time in force the server gave each, as `cux orders` shows it.
    assert (resting["type"], resting["tif"]) == ("limit", "GTC")
    assert (order["type"], order["price"], order["tif"]) == ("market", None, "IOC")
    assert (order["status"], order["filled"], order["reason"]) == (
        "cancelled",
        4,
        "unfilled",
    )
    assert [(f["price"], f["qty"], f["fee"]) for f in order["fills"]] == [(1500, 4, 6)]


def test_a_refused_trade_exits_1_with_the_code_on_stderr_and_in_json(
    server: ServerProcess, desk: Desk
) -> None:
    done = cux(
        "trade",
        "buy",
        desk.symbol,
        "1000000",
        "--price",
        "1000000",
        "--json",
        *as_(server, desk.buyer),
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["code"] == "INSUFFICIENT_FUNDS"
    assert done.stderr.startswith("cux trade: INSUFFICIENT_FUNDS: ")


def test_a_malformed_price_is_a_usage_error(server: ServerProcess, desk: Desk) -> None:
    done = cux(
        "trade", "buy", desk.symbol, "1", "--price", "12.5", *as_(server, desk.buyer)
    )
    assert done.returncode == 2
    assert "--price: must be a whole number" in done.stderr


def test_amend_and_cancel_change_and_remove_orders(
    server: ServerProcess, desk: Desk
) -> None:
    ids = place(
        server, desk.buyer, [(desk.symbol, "buy", 5, p) for p in (900, 901, 902)]
    )
    amended = cux(
        "amend", ids[0], "--qty", "2", "--price", "905", *as_(server, desk.buyer)
    )
    assert amended.returncode == 0, amended.stderr
    assert amended.stdout.strip() == f"amended {ids[0]}: 2 open at 905"

    one = ok_json(cux("cancel", ids[1], "--json", *as_(server, desk.buyer)))
    assert one == {"cancelled": [ids[1]], "failed": []}
    again = cux("cancel", ids[1], *as_(server, desk.buyer))
    assert again.returncode == 1
    assert "ORDER_CLOSED" in again.stderr

    rest = ok_json(cux("cancel", "--all", "--json", *as_(server, desk.buyer)))
    assert rest == {"cancelled": 2}
    assert ok_json(cux("orders", "--json", *as_(server, desk.buyer))) == {"orders": []}


def test_amend_prints_the_order_as_it_stands_and_says_when_the_amend_filled_it(
    server: ServerProcess, desk: Desk
) -> None:
    resting, crossing, partial = place(
        server, desk.buyer, [(desk.symbol, "buy", 5, p) for p in (33, 40, 41)]
    )
    place(server, desk.seller, [(desk.symbol, "sell", 8, 50)])
    buyer = as_(server, desk.buyer)

    qty = ok_json(cux("amend", resting, "--qty", "7", "--json", *buyer))
    filled = cux("amend", crossing, "--price", "50", *buyer)
    rest = ok_json(cux("amend", partial, "--price", "50", "--json", *buyer))

    assert qty == {
        "order_id": resting, "client_order_id": None, "symbol": desk.symbol,
        "side": "buy", "type": "limit", "tif": "GTC", "price": 33, "qty": 7,
        "filled": 0, "leaves": 7, "expire_at": None, "status": "amended",
        "reason": None, "fills": [],
    }  # fmt: skip
    assert filled.returncode == 0, filled.stderr
    # 5 lots at 50: 250 µcr, of which a taker's 10 bps, rounded up: 1 µcr.
    assert filled.stdout.strip() == (
        f"amended {crossing}: filled, 5 lots at an average price of 50 (fees 1 µcr)"
    )
    assert (rest["status"], rest["price"], rest["qty"]) == ("partially_filled", 50, 5)
    assert (rest["filled"], rest["leaves"]) == (3, 2)
    assert [(f["qty"], f["price"], f["liquidity"]) for f in rest["fills"]] == [
        (3, 50, "taker")
    ]
    open_orders = ok_json(cux("orders", "--json", *buyer))["orders"]
    assert [(o["order_id"], o["price"], o["leaves"]) for o in open_orders] == [
        (resting, 33, 7),
        (partial, 50, 2),
    ]


def test_cancel_of_several_ids_tries_each_and_reports_each_exiting_1_if_any_failed(
    server: ServerProcess, desk: Desk
) -> None:
    first, second, third, fourth = place(
        server, desk.buyer, [(desk.symbol, "buy", 1, p) for p in (800, 801, 802, 803)]
    )

    done = cux("cancel", first, "999999", second, "--json", *as_(server, desk.buyer))
    table = cux("cancel", third, "999999", fourth, *as_(server, desk.buyer))

    assert done.returncode == 1
    unknown = {
        "order_id": "999999",
        "code": "UNKNOWN_ORDER",
        "message": "no order has this id",
    }
    assert json.loads(done.stdout) == {
        "cancelled": [first, second],
        "failed": [unknown],
    }
    assert done.stderr == f"cux cancel: 999999: UNKNOWN_ORDER: {unknown['message']}\n"
    assert table.returncode == 1
    rows = [line.split("│")[1:3] for line in table.stdout.splitlines() if "│" in line]
    assert [[cell.strip() for cell in row] for row in rows] == [
        [third, "cancelled"],
        ["999999", f"UNKNOWN_ORDER: {unknown['message']}"],
        [fourth, "cancelled"],
    ]
    assert ok_json(cux("orders", "--json", *as_(server, desk.buyer))) == {"orders": []}


@pytest.mark.parametrize(
    "command",
    [("cancel", "--all", "--symbol", "nope-SPOT"), ("orders", "--symbol", "nope-SPOT")],
)
def test_an_unknown_symbol_for_cancel_all_or_orders_exits_1_naming_it(
    server: ServerProcess, desk: Desk, command: tuple[str, ...]
) -> None:
    # The server answers UNKNOWN_SYMBOL, not 0 cancelled or no orders.
    done = cux(*command, "--json", *as_(server, desk.buyer))

    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["code"] == "UNKNOWN_SYMBOL"
    assert done.stderr.strip() == (
        f"cux {command[0]}: UNKNOWN_SYMBOL: no instrument has this symbol: 'nope-SPOT'"
    )


def test_a_trade_in_an_unknown_symbol_names_the_symbol(
    server: ServerProcess, desk: Desk
) -> None:
    done = cux(
        "trade", "buy", "nope-SPOT", "1", "--price", "5", *as_(server, desk.buyer)
    )

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "cux trade: UNKNOWN_SYMBOL: no instrument has this symbol: 'nope-SPOT'"
    )


# -- the book -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["--once", "--json"])
def test_book_of_an_unknown_symbol_exits_1_with_unknown_symbol_naming_it(
    server: ServerProcess, mode: str
) -> None:
    done = cux("book", "nope-SPOT", mode, "--url", server.url)

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "cux book: UNKNOWN_SYMBOL: no instrument has this symbol: 'nope-SPOT'"
    )
    if mode == "--json":
        assert json.loads(done.stdout) == {
            "error": {
                "code": "UNKNOWN_SYMBOL",
                "message": "no instrument has this symbol: 'nope-SPOT'",
            }
        }


def test_book_once_prints_levels_spread_and_trades_and_json_matches_rest(
    server: ServerProcess, desk: Desk
) -> None:
    place(server, desk.seller, [(desk.symbol, "sell", 3, 1010)])
    place(
        server,
        desk.buyer,
        [(desk.symbol, "buy", 1, 1010), (desk.symbol, "buy", 7, 990)],
    )

    table = cux("book", desk.symbol, "--once", "--url", server.url)
    assert table.returncode == 0, table.stderr
    assert f"{desk.symbol} book" in table.stdout
    assert "best bid 990  best ask 1010  spread 20" in table.stdout
    assert "Latest trades" in table.stdout
    row = next(line for line in table.stdout.splitlines() if "990" in line)
    assert "7" in row
    assert "2" in row  # the ask's 2 lots left, on the same row

    data = ok_json(cux("book", desk.symbol, "--json", "--url", server.url))
    rest = server.get(f"/api/v1/book/{desk.symbol}").body
    assert (data["seq"], data["bids"], data["asks"], data["checksum"]) == (
        rest["seq"],
        rest["bids"],
        rest["asks"],
        rest["checksum"],
    )
    assert [(t["price"], t["qty"]) for t in data["trades"]] == [(1010, 1)]


def test_book_live_refreshes_until_its_duration_and_exits_0(
    server: ServerProcess, desk: Desk
) -> None:
    place(server, desk.buyer, [(desk.symbol, "buy", 4, 777)])
    done = cux("book", desk.symbol, "--duration", "0.5", "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert f"{desk.symbol} book" in done.stdout
    assert "777" in done.stdout


class Terminal:
    """A process on a pseudo-terminal (so ``rich`` draws its live table as it
    would for a person) and everything it wrote so far."""

    def __init__(self, *args: str) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("CUX_")}
        env = {**base, "HOME": str(ROOT / "nonexistent-home")}
        env.update(COLUMNS="120", LINES="40", TERM="xterm")
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [CUX, *args], cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave
        )
        os.close(slave)
        self._master = master
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the process closed the terminal
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text:
            assert self.proc.poll() is None, self.text
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.text}"
            time.sleep(0.05)

    def interrupt(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        os.close(self._master)
        return rc


def test_book_live_shows_a_level_placed_while_it_runs(
    server: ServerProcess, desk: Desk
) -> None:
    place(server, desk.buyer, [(desk.symbol, "buy", 4, 777)])
    live = Terminal("book", desk.symbol, "--duration", "120", "--url", server.url)
    try:
        live.wait_for("best bid 777")  # the first table, before the change
        assert "4321" not in live.text

        place(server, desk.seller, [(desk.symbol, "sell", 9, 4321)])

        live.wait_for("best ask 4321")
    finally:
        rc = live.interrupt()
    assert rc == 130  # Ctrl-C, as a person stops it
    last = live.text[live.text.rindex(f"{desk.symbol} book") :]  # the last frame
    assert "best bid 777  best ask 4321  spread 3544" in last
    [row] = [ln for ln in last.splitlines() if "4321" in ln and "best" not in ln]
    assert "9" in row.split("4321")[1]  # the ask's 9 lots, beside its price


def test_trade_tif_ioc_leaves_nothing_resting_and_fok_fills_all_or_nothing(
    server: ServerProcess, desk: Desk
) -> None:
    place(server, desk.seller, [(desk.symbol, "sell", 3, 1000)])
    buy = ["trade", "buy", desk.symbol, "--json", *as_(server, desk.buyer)]

    killed = ok_json(cux(*buy, "5", "--price", "1000", "--tif", "FOK"))
    ioc = ok_json(cux(*buy, "5", "--price", "1000", "--tif", "IOC"))
    orders = ok_json(cux("orders", "--json", *as_(server, desk.buyer)))

    assert (killed["tif"], killed["status"], killed["reason"], killed["filled"]) == (
        "FOK",
        "cancelled",
        "fill_or_kill",
        0,
    )
    assert (ioc["tif"], ioc["status"], ioc["reason"], ioc["filled"]) == (
        "IOC",
        "cancelled",
        "unfilled",
        3,  # what the FOK order left on the book
    )
    assert orders == {"orders": []}


# -- jobs ---------------------------------------------------------------------------


def test_job_submit_with_an_unknown_tier_exits_2_naming_the_tiers(
    server: ServerProcess, desk: Desk, tmp_path: Path
) -> None:
    place(server, desk.seller, [(desk.symbol, "sell", 1, 1000)])
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("a text\n", encoding="utf-8")

    done = cux(
        *("job", "submit", str(inputs), "--symbol", desk.symbol),
        *("--tier", "ultra", "--budget-cu", "1", "--max-price", "1000"),
        *as_(server, desk.buyer),
    )

    assert done.returncode == 2
    assert "argument --tier: invalid choice: 'ultra'" in done.stderr
    assert "'fast'" in done.stderr


def test_job_submit_on_a_lease_passes_its_tier_and_job_get_shows_it(
    server: ServerProcess, desk: Desk, tmp_path: Path
) -> None:
    place(server, desk.seller, [(desk.symbol, "sell", 1, 1000)])
    lease = asyncio.run(bought_lease(server, desk))
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("a text\nanother text\n", encoding="utf-8")

    submitted = ok_json(
        cux(
            *("job", "submit", str(inputs), "--symbol", desk.symbol, "--no-wait"),
            *("--tier", "fast", "--budget-cu", "1", "--lease", str(lease)),
            *("--json", *as_(server, desk.buyer)),
        )
    )
    got = cux("job", "get", submitted["job_id"], "--json", *as_(server, desk.buyer))
    job = ok_json(got)

    assert (job["job_id"], job["tier"], job["inputs"]) == (
        submitted["job_id"],
        "fast",
        2,
    )
    # No node serves the desk, so the job fails at once; what it was is the point.
    assert job["status"] in ("running", "failed")


def test_job_submit_no_wait_prints_only_the_id_for_a_script_to_take(
    server: ServerProcess, desk: Desk, tmp_path: Path
) -> None:
    place(server, desk.seller, [(desk.symbol, "sell", 1, 1000)])
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("a text\n", encoding="utf-8")

    done = cux(
        *("job", "submit", str(inputs), "--symbol", desk.symbol, "--no-wait"),
        *("--max-price", "1000", "--budget-cu", "1", *as_(server, desk.buyer)),
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().isdigit(), done.stdout
    assert done.stdout == done.stdout.strip() + "\n"
    got = cux("job", "get", done.stdout.strip(), "--json", *as_(server, desk.buyer))
    assert ok_json(got)["job_id"] == done.stdout.strip()


def test_job_texts_too_big_for_one_request_exit_2_and_are_not_sent(
    server: ServerProcess, desk: Desk, tmp_path: Path
) -> None:
    texts = tmp_path / "big.txt"
    texts.write_text(("y" * 8000 + "\n") * 20, encoding="utf-8")

    done = cux(
        *("job", "submit", str(texts), "--symbol", desk.symbol),
        *("--budget-cu", "1", "--max-price", "1000", *as_(server, desk.buyer)),
    )

    assert done.returncode == 2
    assert done.stderr.startswith(f"cux job submit: the texts of {texts} are too long")
    assert done.stderr.strip().endswith("split them into several jobs")


async def bought_lease(server: ServerProcess, desk: Desk) -> int:
    """The desk's buyer buys one lot on offer: its spot lease's id."""
    async with Client(server.url, desk.buyer, f"{desk.buyer}-secret") as client:
        order = await client.buy(desk.symbol, 1, 1000, tif="IOC")
        result = await client.wait_order(order.order_id, timeout=10)
    [fill] = result.fills
    return fill.trade_id
