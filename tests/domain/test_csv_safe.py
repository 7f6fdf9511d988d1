"""Export cells that a spreadsheet would run as a formula stay text."""

from __future__ import annotations

import pytest

from fablab.domain.csv_safe import cell


@pytest.mark.parametrize("raw", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_text_starting_like_a_formula_is_quoted(raw: str) -> None:
    assert cell(raw) == "'" + raw


@pytest.mark.parametrize("raw", ["Ada", "benchy.gcode", "", "a=b"])
def test_other_text_is_unchanged(raw: str) -> None:
    assert cell(raw) == raw


def test_numbers_are_unchanged() -> None:
    assert cell(-1.5) == -1.5 and cell(3) == 3 and cell(None) is None
