"""The member CSV reader: the file's shape and every row's errors, with row number and column."""

from __future__ import annotations

from datetime import date

import pytest

from fablab.domain import member_csv as mcsv

TYPES = ("laser_cutter", "3d_printer")


def parse(text: str, encoding: str = "utf-8") -> mcsv.ParsedFile:
    return mcsv.parse(text.encode(encoding), TYPES)


def test_full_row_with_bom_semicolons_quotes_and_any_header_case() -> None:
    got = parse("\ufeffEMAIL;Name;Member No;Badge UID;Role;Qualifications\r\n"
                'Ada@Example.org;"Lovelace; Ada";1201;04:A2:b3;Steward;"laser_cutter:2027-06-30;3d_printer"\r\n')
    assert got.refusal is None and got.errors == []
    assert got.columns == mcsv.COLUMNS
    row = got.rows[0]
    assert (row.row, row.email, row.name, row.member_no, row.badge_uid, row.role) == (
        2, "ada@example.org", "Lovelace; Ada", 1201, "04:A2:b3", "steward")
    assert row.qualifications == (mcsv.QualSpec("laser_cutter", date(2027, 6, 30)), mcsv.QualSpec("3d_printer"))


def test_comma_file_with_only_some_columns_and_blank_lines() -> None:
    got = parse("email,name\n\na@x.org,A\n,\nb@x.org,\n")
    assert [(r.row, r.email, r.name, r.role) for r in got.rows] == [(3, "a@x.org", "A", None),
                                                                   (5, "b@x.org", None, None)]


def test_tab_delimited() -> None:
    got = parse("email\tname\tqualifications\na@x.org\tA\tlaser_cutter,3d_printer\n")
    assert got.rows[0].qualifications == (mcsv.QualSpec("laser_cutter"), mcsv.QualSpec("3d_printer"))


def test_formula_protected_cells_read_back_as_typed() -> None:
    got = parse("email,name\na@x.org,'=HYPERLINK(1)\nb@x.org,'quoted\n")
    assert [r.name for r in got.rows] == ["=HYPERLINK(1)", "'quoted"]


@pytest.mark.parametrize(("data", "words"), [
    (b"", "empty"), (b"  \n\n", "empty"),
    ("email,name\nb@x.org,Bj\xf6rn\n".encode("latin-1"), "not UTF-8"),
    (b"PK\x03\x04\x00\x00binary", "binary"),
    (b"email,name\n", "no members"),
    (b"email,name,phone\na@x.org,A,123\n", "Unknown column(s): phone"),
    (b"name,role\nA,member\n", "no email column"),
    (b"email,Email\na@x.org,b@x.org\n", "appears twice"),
    (b'email,name\na@x.org,"never closed\n', "not a readable CSV"),
])
def test_files_refused_as_a_whole_say_why(data: bytes, words: str) -> None:
    got = mcsv.parse(data, TYPES)
    assert got.refusal is not None and words in got.refusal
    assert got.rows == []


def test_too_large_and_too_many_rows() -> None:
    assert "larger than 2 MB" in (mcsv.parse(b"email\n" + b"a" * mcsv.MAX_BYTES, TYPES).refusal or "")
    many = "email\n" + "".join(f"m{i}@x.org\n" for i in range(mcsv.MAX_ROWS + 1))
    assert f"at most {mcsv.MAX_ROWS}" in (parse(many).refusal or "")


def test_each_bad_cell_is_reported_with_row_and_column() -> None:
    got = parse("email,name,member_no,badge_uid,role,qualifications\n"
                "ok@x.org,Ok,10,,member,\n"
                "not-an-email,A,11,,,\n"
                "b@x.org,B,twelve,,,\n"
                "c@x.org,C,13,,boss,\n"
                "d@x.org,D,14,,,laser_cutter:2027-02-30\n"
                "e@x.org,E,15,,,welder\n"
                "f@x.org,F,16,bad uid!,,\n"
                ",G,17,,,\n"
                "h@x.org,H,18,,,3d_printer;3d_printer\n"
                "i@x.org,I,19,,,,extra\n")
    assert [r.row for r in got.rows] == [2]
    where = {(e.row, e.column) for e in got.errors}
    assert where == {(3, "email"), (4, "member_no"), (5, "role"), (6, "qualifications"), (7, "qualifications"),
                     (8, "badge_uid"), (9, "email"), (10, "qualifications"), (11, "")}
    texts = [e.text() for e in got.errors]
    assert "row 5, column role: “boss” is not a role; use member, steward or admin." in texts
    assert any(t.startswith("row 7, column qualifications: “welder” is not a machine type") and "laser_cutter" in t
               for t in texts)
    assert any("2027-02-30" in t for t in texts)


def test_duplicates_within_the_file_name_the_first_row() -> None:
    got = parse("email,member_no,badge_uid\n"
                "a@x.org,1,AA:BB\n"
                "A@x.org,2,\n"
                "b@x.org,1,\n"
                "c@x.org,3,aabb\n")
    assert [r.row for r in got.rows] == [2]
    assert [e.text() for e in got.errors] == [
        "row 3, column email: a@x.org is already in row 2 of this file.",
        "row 4, column member_no: 1 is already in row 2 of this file.",
        "row 5, column badge_uid: this badge is already in row 2 of this file.",
    ]


def test_header_keys_and_unprotect() -> None:
    assert mcsv.header_key(" Member-No ") == "member_no"
    assert mcsv.unprotect("'+49") == "+49" and mcsv.unprotect("'x") == "'x" and mcsv.unprotect("=1") == "=1"
    assert mcsv.sniff_delimiter("a;b;c,d") == ";" and mcsv.sniff_delimiter("email") == ","
