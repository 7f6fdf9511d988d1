"""The bounded parsers and the request schema, without app or database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from fablab.domain import bounded
from fablab.domain.bounded import InputError
from fablab.domain.input_schema import Body, Field

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("raw", ["0", "-1", str(bounded.MAX_ID + 1), str(2**63), "1.0", "1e3", "abc", "١", "", None,
                                 True, 1.0, [], "9" * 5000])
def test_parse_id_refuses(raw) -> None:
    with pytest.raises(InputError) as err:
        bounded.parse_id(raw, "id")
    assert err.value.field == "id"


def test_parse_id_takes_the_range() -> None:
    assert bounded.parse_id("1", "id") == 1
    assert bounded.parse_id(bounded.MAX_ID, "id") == bounded.MAX_ID


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", float("nan"), float("inf"), "1e400", True, "x"])
def test_parse_number_refuses_what_is_not_a_finite_number(raw) -> None:
    with pytest.raises(InputError):
        bounded.parse_number(raw, "hours", 0, 100)


def test_parse_number_bounds() -> None:
    assert bounded.parse_number("2.5", "h", 0, 10) == 2.5
    with pytest.raises(InputError) as err:
        bounded.parse_number(11, "h", 0, 10)
    assert err.value.code == "out_of_range"


@pytest.mark.parametrize("raw", ["0001-01-01T00:00+01:00", "0001-01-01T00:00", "9999-12-31T23:59:59-01:00",
                                 "1969-12-31T23:00", "2101-01-01T00:00", "2026-02-30T10:00", 20260101, ""])
def test_parse_datetime_refuses(raw) -> None:
    with pytest.raises(InputError):
        bounded.parse_datetime(raw, "start", BERLIN)


def test_parse_datetime_means_lab_time_without_offset() -> None:
    assert bounded.parse_datetime("2026-07-01T12:00", "s", BERLIN) == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert bounded.parse_datetime("2026-07-01T12:00Z", "s", BERLIN) == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def test_parse_date() -> None:
    assert bounded.parse_date("2026-12-31", "week") == date(2026, 12, 31)
    for raw in ("9999-12-31", "0001-01-01", "2026-13-01"):
        with pytest.raises(InputError):
            bounded.parse_date(raw, "week")


def test_parse_text_refuses_nul() -> None:
    assert bounded.parse_text("a\tb\r\n", "t") == "a\tb\r\n"
    for raw in ("a\x00b", "\x1b[31m", 5, "x" * 11):
        with pytest.raises(InputError):
            bounded.parse_text(raw, "t", max_length=10)


BODY = Body((Field("machine", required=True, max_length=60), Field("start", "datetime", required=True),
             Field("minutes", "integer", lo=1, hi=600), Field("kind", choices=("slot", "any")),
             Field("hours", "number", lo=0, hi=24), Field("window", "id")))


def test_body_schema_is_the_json_schema_of_what_it_checks() -> None:
    schema = BODY.schema()
    assert schema["required"] == ["machine", "start"]
    assert schema["properties"]["minutes"] == {"type": "integer", "minimum": 1, "maximum": 600}
    assert schema["properties"]["window"] == {"type": "integer", "minimum": 1, "maximum": bounded.MAX_ID}
    assert schema["properties"]["kind"]["enum"] == ["slot", "any"]
    assert schema["properties"]["start"] == {"type": "string", "format": "date-time"}


def test_body_validates_and_converts() -> None:
    out = BODY.validate({"machine": "laser-1", "start": "2026-07-01T12:00+02:00", "minutes": 60, "extra": [1],
                         "kind": None}, BERLIN)
    assert out == {"machine": "laser-1", "start": datetime(2026, 7, 1, 10, 0, tzinfo=UTC), "minutes": 60}


@pytest.mark.parametrize(("body", "field"), [
    ({"start": "2026-07-01T12:00"}, "machine"),
    ({"machine": [None, None], "start": "2026-07-01T12:00"}, "machine"),
    ({"machine": "m", "start": "2026-07-01T12:00", "minutes": 1e12}, "minutes"),
    ({"machine": "m", "start": "2026-07-01T12:00", "minutes": "60"}, "minutes"),  # JSON: a number, not text
    ({"machine": "m", "start": "2026-07-01T12:00", "hours": "NaN"}, "hours"),
    ({"machine": "m", "start": "2026-07-01T12:00", "kind": "later"}, "kind"),
    ({"machine": "m", "start": "2026-07-01T12:00", "window": 2**63}, "window"),
])
def test_body_refusals_name_the_field(body, field) -> None:
    with pytest.raises(InputError) as err:
        BODY.validate(body, BERLIN)
    assert err.value.field == field


def test_form_text_converts_numbers() -> None:
    out = BODY.validate({"machine": "m", "start": "2026-07-01T12:00", "minutes": "60"}, BERLIN, typed=False)
    assert out["minutes"] == 60

