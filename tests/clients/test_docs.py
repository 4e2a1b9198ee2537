"""docs/clients.md works as written: its complete Python programs run against a
real `cux serve` (the url swapped for the test server's), and its sizing and
config examples say what the code does."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from server_harness import ROOT, ServerProcess, write_config

from clients.config import resolve
from clients.sizing import max_buy_qty, parse_credits

DOC = ROOT / "docs" / "clients.md"


def blocks(kind: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return [b.split("```", 1)[0] for b in text.split(f"```{kind}\n")[1:]]


def test_the_docs_complete_python_programs_run_against_a_real_server(
    tmp_path: Path,
) -> None:
    programs = [b for b in blocks("python") if "asyncio.run(" in b]
    assert programs
    with ServerProcess(write_config(tmp_path), tmp_path / "data") as server:
        for program in programs:
            code = program.replace("ws://127.0.0.1:8700/ws", server.url)
            done = subprocess.run(
                [sys.executable, "-c", code],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert "cancelled 0 []" in done.stdout


def test_the_docs_sizing_example_gives_what_it_says() -> None:
    [example] = [b for b in blocks("python") if "max_buy_qty(" in b]
    assert "# 24_010_000 µcr" in example
    assert "# 11" in example
    assert parse_credits("24.01") == 24_010_000
    assert max_buy_qty(24_010_000, price=2_000_000, fee_bps=10) == 11


def test_the_docs_config_file_example_is_a_valid_config_file(tmp_path: Path) -> None:
    [example] = blocks("toml")
    path = tmp_path / "client.toml"
    path.write_text(example, encoding="utf-8")
    tomllib.loads(example)
    bob = resolve(config=path, profile="bob", env={})
    assert (bob.url, bob.key, bob.secret) == (
        "ws://127.0.0.1:8700/ws",
        "bob",
        "bob-secret",
    )
