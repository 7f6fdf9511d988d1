"""CSV cells a spreadsheet will not run: text that starts like a formula is quoted with a leading '.

Free text in exports (member names, job file names reported by a machine's firmware) is chosen by
someone else than the person opening the file, so "=HYPERLINK(...)" must stay text.
"""

from __future__ import annotations

from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """`value` unchanged, except text starting like a formula, which gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
