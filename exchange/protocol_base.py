"""The building blocks of the wire protocol's structs (see `exchange.protocol`).

Every request is tagged by ``op`` and carries an ``id``; every server message is
tagged by ``type``. Integer fields are signed 64-bit at most, so that anything
decoded can be journaled.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["Id", "Int64", "Label", "Name", "OrderId", "Symbol"]

Id = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Symbol = Annotated[str, msgspec.Meta(max_length=64)]
OrderId = str | Int64
Label = Annotated[str, msgspec.Meta(max_length=64)]
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class _Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="op"):
    id: Id


class _Message(msgspec.Struct, frozen=True, tag_field="type"):
    pass
