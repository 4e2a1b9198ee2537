"""Plain-text tables and exact money formatting for the command line.

Money is formatted from integers only: a float never touches an amount, even
for display, so what is printed is exactly what the ledger holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

__all__ = ["Column", "credits", "render_table"]

MICRO_PER_CREDIT: Final = 1_000_000

Column = tuple[str, Literal["<", ">"]]
"""A column's header and alignment: ``<`` for text, ``>`` for numbers."""


def credits(amount: int) -> str:
    """``amount`` µcr as credits with all six decimals, e.g. ``1,234.000050``."""
    sign = "-" if amount < 0 else ""
    whole, micro = divmod(abs(amount), MICRO_PER_CREDIT)
    return f"{sign}{whole:,}.{micro:06d}"


def render_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> str:
    """Columns two spaces apart, headers underlined, every cell aligned.

    A table without rows shows its headers and ``(none)``.
    """
    widths = [len(header) for header, _ in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = (
            f"{cell:{align}{width}}"
            for cell, (_, align), width in zip(cells, columns, widths, strict=True)
        )
        return "  ".join(parts).rstrip()

    lines = [line([header for header, _ in columns])]
    lines.append(line(["-" * width for width in widths]))
    lines.extend(line(row) for row in rows)
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)
