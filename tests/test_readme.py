"""The README's reference tables stay in step with the code."""

import subprocess
import tomllib
from pathlib import Path

import msgspec

from exchange.protocol import WIRE_CODES
from exchange.rest import HTTP_CODES
from exchange.sessions import PRIVATE_CHANNELS
from exchange.settings import Settings
from matching.codes import CODES

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_lists_every_rejection_code_with_its_meaning() -> None:
    text = README.read_text(encoding="utf-8")

    for code, meaning in CODES.items():
        assert f"| `{code.value}` | {meaning} |" in text


def test_readme_python_examples_run() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]

    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"print": lambda *a: None})


def test_readme_lists_every_server_error_code_with_its_meaning() -> None:
    text = README.read_text(encoding="utf-8")

    for code, meaning in WIRE_CODES.items():
        assert f"| `{code.value}` | {meaning} |" in text


def test_readme_lists_every_http_error_code_with_its_meaning() -> None:
    text = README.read_text(encoding="utf-8")

    for code, meaning in HTTP_CODES.items():
        assert f"| `{code}` | {meaning} |" in text


def test_readme_server_configuration_is_a_valid_configuration() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```toml\n")[1:]]

    assert blocks
    for block in blocks:
        settings = msgspec.convert(tomllib.loads(block), Settings)
        assert settings.market.classes


def test_readme_lists_every_job_error_code_with_its_meaning() -> None:
    from exchange.gateway_jobs import JOB_CODES

    text = README.read_text(encoding="utf-8")
    for code, meaning in JOB_CODES.items():
        assert f"| `{code}` | {meaning} |" in text


def test_readme_lists_every_node_registration_code_with_its_meaning() -> None:
    from exchange.nodes import NODE_CODES

    text = README.read_text(encoding="utf-8")
    for code, meaning in NODE_CODES.items():
        assert f"| `{code}` | {meaning} |" in text


def test_readme_lists_every_private_channel() -> None:
    text = README.read_text(encoding="utf-8")

    for channel in sorted(PRIVATE_CHANNELS):
        assert f"| `{channel}` | private |" in text


def test_the_files_readmes_own_steps_make_are_ignored_by_git() -> None:
    text = README.read_text(encoding="utf-8")
    made = ["cux-data/journal", "texts.txt"]
    assert "--data cux-data" in text
    assert "> texts.txt" in text

    done = subprocess.run(
        ["git", "check-ignore", *made],
        cwd=README.parent,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.stdout.split() == made
