"""What the client commands take from a person, checked before anything is sent.

The argument types (`positive`, `whole`, `seconds`, `identifier`,
`client_order_id`) refuse what makes no sense for a flag (a negative wait, a
zero timeout, a price past the wire's 64-bit integers, an order id the server
could never have written) with argparse's usual message and exit 2.
`read_inputs` reads the texts of a ``cux job submit`` file and raises
`UsageError` for a file the server could not take: unreadable, not UTF-8, not
a JSON list of strings, no texts, a text that is empty or only whitespace,
or more texts or longer ones than a job holds.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

from clients.jobs import MAX_INPUT_CHARS, MAX_JOB_INPUTS

__all__ = [
    "INT64_MAX",
    "UsageError",
    "client_order_id",
    "identifier",
    "positive",
    "read_inputs",
    "seconds",
    "whole",
]

INT64_MAX = 2**63 - 1
"""The largest integer a request carries (prices, quantities, ids, times)."""


class UsageError(Exception):
    """A command was given something it cannot use; the command exits 2 with
    the message. The command line's own: the SDK never raises it."""


# -- argument types -----------------------------------------------------------------


_WHOLE = re.compile(r"-?[0-9]+")
"""A whole number as a person types it: ASCII digits, after a minus sign or
not."""


def whole(low: int, high: int = INT64_MAX) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``, in ASCII
    digits."""

    def parse(text: str) -> int:
        # ASCII digits only, as ids are taken: `int` also reads " 5", "1_000"
        # and the digits of other scripts.
        if not _WHOLE.fullmatch(text):
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}")
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("-").lstrip("0") or "0"
        # Past 20 digits, past every bound (and `int` reads at most 4,300).
        if len(digits) <= 20:
            value = sign * int(digits)
            shown = str(value)
        else:
            value = sign * 10**20
            shown = f"{text[:12]}... ({len(digits):,} digits)"
        if low <= value <= high:
            return value
        # The whole range where it is one a person can read; past the wire's
        # 64-bit integers, only the bound that was crossed.
        if high < INT64_MAX:
            wanted = f"from {low:,} to {high:,}"
        elif value < low:
            wanted = f"at least {low:,}"
        else:
            wanted = f"at most {high}"
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {shown}")

    return parse


positive = whole(1)
"""An argparse type: a whole number from 1 to `INT64_MAX`."""


_DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")
"""A number as a person types it: ASCII digits, a point, an exponent."""


def seconds(text: str) -> float:
    """An argparse type: a time in seconds, more than 0 and finite, in ASCII
    digits (`float` also reads " 5", "1_0", "nan" and other scripts' digits)."""
    if not _DECIMAL.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}")
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds above 0, got {text!r}"
        )
    return value


_ID = re.compile(r"0|[1-9][0-9]{0,17}")
_LABEL = re.compile(r"[ -~]{1,64}")


def identifier(text: str) -> str:
    """An argparse type: an order or job id as the server writes them, digits
    with no sign and no leading zero, at most 18 (below 2^63)."""
    if _ID.fullmatch(text):
        return text
    raise argparse.ArgumentTypeError(
        f"must be an id as the server writes it (digits with no leading zero, "
        f"at most 18), got {text!r}"
    )


def client_order_id(text: str) -> str:
    """An argparse type: a client order id, 1 to 64 printable ASCII
    characters (space to ``~``)."""
    if _LABEL.fullmatch(text):
        return text
    raise argparse.ArgumentTypeError(
        f"must be 1 to 64 printable ASCII characters, got {text!r}"
    )


# -- the texts of a job -------------------------------------------------------------


def read_inputs(name: str) -> list[str]:
    """The texts of file ``name`` (``-``: stdin): one per line, blank lines
    skipped, or with a ``.json`` name a JSON list of strings.

    Raises:
        UsageError: the file cannot be read or holds nothing a job can take;
            the message names the file and what is wrong.
    """
    shown = "stdin" if name == "-" else name
    text = _decode(_read_bytes(name), shown)
    if name.endswith(".json"):
        texts = _json_texts(text, shown)
        where = [f"text {i + 1}" for i in range(len(texts))]
    else:
        numbered = [
            (f"line {number}", line.strip())
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
        where = [place for place, _ in numbered]
        texts = [line for _, line in numbered]
    _check(texts, where, shown)
    return texts


def _read_bytes(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no such file: {name}") from None
    except IsADirectoryError:
        raise UsageError(f"{name} is a folder, not a file of texts") from None
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None


def _decode(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8-sig")  # a byte order mark is not a text
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{shown} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})"
        ) from None


def _json_texts(text: str, shown: str) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{shown} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise UsageError(f"{shown} is not a list of strings: nested too deep") from None
    if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
        raise UsageError(f"{shown} must hold a list of strings")
    return data


def _check(texts: list[str], where: list[str], shown: str) -> None:
    """Refuse here what the server would refuse in words about its wire."""
    if not texts:
        raise UsageError(f"{shown} holds no texts")
    if len(texts) > MAX_JOB_INPUTS:
        raise UsageError(
            f"{shown} holds {len(texts):,} texts; a job takes at most "
            f"{MAX_JOB_INPUTS:,}: split them into several jobs"
        )
    for place, text in zip(where, texts, strict=True):
        if not text.strip():
            # The server refuses it (INVALID_FIELD): nothing to embed.
            raise UsageError(
                f"{place} of {shown} is empty or only whitespace: a job embeds "
                "text, remove it"
            )
        if len(text) > MAX_INPUT_CHARS:
            raise UsageError(
                f"{place} of {shown} is {len(text):,} characters long; a text is "
                f"at most {MAX_INPUT_CHARS:,}"
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"{place} of {shown} is not valid Unicode (a lone surrogate)"
            ) from None
