"""The building blocks of the wire protocol's structs (see `exchange.protocol`).

Every request is tagged by ``op`` and carries an ``id``; every server message is
tagged by ``type``. Integer fields are signed 64-bit at most, so that anything
decoded can be journaled.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

__all__ = ["Id", "Int64", "Label", "Name", "OrderId", "Symbol", "parse_digits"]

# msgspec applies a `pattern` with `re.search`: every pattern is anchored with
# \A and \Z, since ``$`` also matches before a trailing newline ("85\n").
Id = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Symbol = Annotated[str, msgspec.Meta(max_length=64)]
OrderId = Annotated[str, msgspec.Meta(pattern=r"\A(0|[1-9][0-9]{0,17})\Z")]
"""An order or job id: a string of ASCII digits as the server wrote it (no sign,
no leading zero, at most 18 digits, so below 2^63); a JSON number is refused."""

_ID = re.compile(r"0|[1-9][0-9]{0,17}")


def parse_digits(text: str) -> int | None:
    """The order or job id ``text`` spells in the `OrderId` form, or None: for
    ids that arrive outside a decoded struct (a REST path, a query)."""
    return int(text) if _ID.fullmatch(text) else None


Label = Annotated[str, msgspec.Meta(pattern=r"\A[ -~]{1,64}\Z")]
"""A client order id or an account name: 1 to 64 printable ASCII characters
(space to ``~``), so that it can be echoed, logged and journaled as it is."""
Name = Annotated[str, msgspec.Meta(pattern=r"\A[A-Za-z0-9_.:-]{1,64}\Z")]


class _Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="op"):
    id: Id


class _Message(msgspec.Struct, frozen=True, tag_field="type"):
    pass
