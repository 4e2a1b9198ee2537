"""`cux serve` that cannot start: one line on stderr, exit code 2, nothing written.

Each test runs the real command; those that fail at start-up end on their own.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from server_harness import ROOT, ServerProcess, connected, write_config


def serve(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``cux serve`` with ``args`` until it exits (these runs do at once)."""
    return subprocess.run(
        [sys.executable, "-m", "exchange", "serve", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_config_that_is_not_utf8_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "e7.toml"
    config.write_bytes(b'[server]\nfsync = "batch"\n# caf\xe9\n')

    done = serve("--config", config, "--data", tmp_path / "data")

    assert done.returncode == 2
    assert done.stderr == (
        f"cux serve: {config} is not UTF-8 text: byte 0xe9 at offset 30\n"
    )
    assert not (tmp_path / "data").exists()


ACCOUNT = """
[[accounts]]
key = "dave"
secret = "dave-secret"
"""

BAD_ACCOUNTS = {
    "capacity on no instrument": (
        'roles = ["provider"]\ncapacity = { nope-SPOT = 5 }',
        "capacity names no instrument of the market: 'nope-SPOT' (capacity is set "
        "on spot instruments: cpu-SPOT) - at `$.accounts[4].capacity`",
    ),
    "capacity without the provider role": (
        'roles = ["consumer"]\ncapacity = { cpu-SPOT = 5 }',
        "capacity needs the provider role - at `$.accounts[4].capacity`",
    ),
    "no roles": (
        "roles = []",
        "an account needs one or more roles - at `$.accounts[4].roles`",
    ),
    "a role twice": (
        'roles = ["consumer", "consumer"]',
        "roles must each be given once, got ['consumer', 'consumer'] - at "
        "`$.accounts[4].roles`",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ACCOUNTS))
def test_an_account_the_engine_would_refuse_stops_start_up(
    tmp_path: Path, case: str
) -> None:
    lines, message = BAD_ACCOUNTS[case]
    config = write_config(tmp_path, extra=ACCOUNT + lines)

    done = serve("--config", config, "--data", tmp_path / "data")

    assert done.returncode == 2
    assert done.stderr == f"cux serve: {config}: {message}\n"
    assert not (tmp_path / "data").exists()


async def test_a_port_in_use_is_one_line_and_a_retry_on_the_same_data_works(
    tmp_path: Path,
) -> None:
    config, data = write_config(tmp_path), tmp_path / "data"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = serve("--config", config, "--data", data, "--port", str(port))

    assert done.returncode == 2
    assert done.stderr == (
        f"cux serve: cannot listen on 127.0.0.1:{port}: address already in use\n"
    )
    assert not data.exists()
    with ServerProcess(config, data) as server:
        async with connected(server.url, "alice") as alice:
            assert (await alice.request("balance"))["type"] == "result"


def test_a_host_with_no_address_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config, data = write_config(tmp_path), tmp_path / "data"

    done = serve("--config", config, "--data", data, "--host", "999.1.1.1")

    assert done.returncode == 2
    assert done.stderr.startswith(
        "cux serve: cannot listen on 999.1.1.1:8700: no such host ("
    )
    assert len(done.stderr.splitlines()) == 1
    assert not data.exists()


def test_a_data_path_that_is_a_file_is_named_in_one_line(tmp_path: Path) -> None:
    config, data = write_config(tmp_path), tmp_path / "data"
    data.write_text("not a folder")

    done = serve("--config", config, "--data", data, "--port", "0")

    assert done.returncode == 2
    assert done.stderr == f"cux serve: the data folder {data} is a file, not a folder\n"


CLASS = """
[[classes]]
name = "big"
lot_cu = 100
tick = 1
"""

OUT_OF_RANGE = {
    "lease_seconds": (
        "lease_seconds = 99999999999999999999999",
        "Expected `int` <= 31622400 - at `$.classes[1].lease_seconds`",
    ),
    "lot_cu": (
        "lot_cu = 99999999999999999999",
        "Expected `int` <= 1000000000 - at `$.classes[1].lot_cu`",
    ),
    "tick": (
        "tick = 99999999999999999999999",
        "Expected `int` <= 1000000000000 - at `$.classes[1].tick`",
    ),
}


@pytest.mark.parametrize("field", sorted(OUT_OF_RANGE))
def test_a_class_field_past_the_engine_limit_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, field: str
) -> None:
    line, message = OUT_OF_RANGE[field]
    lines = "\n".join(
        line if row.startswith(f"{field} =") else row for row in CLASS.splitlines()
    )
    if not lines.count(field):
        lines += "\n" + line
    config = write_config(tmp_path, extra=lines)

    done = serve("--config", config, "--data", tmp_path / "data")

    assert done.returncode == 2
    assert done.stderr == f"cux serve: {config}: {message}\n"
    assert not (tmp_path / "data").exists()


def test_a_config_of_no_classes_is_refused_at_start_up(tmp_path: Path) -> None:
    config = tmp_path / "cux.toml"
    config.write_text("classes = []\n", encoding="utf-8")

    done = serve("--config", config, "--data", tmp_path / "data")

    assert done.returncode == 2
    assert done.stderr == (
        f"cux serve: {config}: Expected `array` of length >= 1 - at `$.classes`\n"
    )


NEWLINE_NAMES = {
    "class name": (
        '\n[[classes]]\nname = "big\\n"\nlot_cu = 1\ntick = 1\n',
        r"Expected `str` matching regex '\\A[a-z0-9][a-z0-9-]{0,31}\\Z' - at "
        "`$.classes[1].name`",
    ),
    "account key": (
        '\n[[accounts]]\nkey = "dave\\n"\nsecret = "s"\n',
        r"Expected `str` matching regex '\\A[A-Za-z0-9_.@-]{1,64}\\Z' - at "
        "`$.accounts[4].key`",
    ),
}


@pytest.mark.parametrize("case", sorted(NEWLINE_NAMES))
def test_a_name_with_a_trailing_newline_is_refused_at_start_up(
    tmp_path: Path, case: str
) -> None:
    extra, message = NEWLINE_NAMES[case]
    config = write_config(tmp_path, extra=extra)

    done = serve("--config", config, "--data", tmp_path / "data")

    assert done.returncode == 2
    assert done.stderr == f"cux serve: {config}: {message}\n"
