"""The JSON API (same figures, same privacy) and the SVG charts (well-formed, titled, escaped)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from fablab.extensions import db
from fablab.services import fairness as svc
from fablab.services.members import create_api_token
from fablab.web import charts
from tests.fairness.conftest import NOW, T0, at, book, closed_window, review, unmet_request

SVG = "{http://www.w3.org/2000/svg}"


def _auth(member) -> dict[str, str]:
    token = create_api_token(member)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def week(machine, members, make_member):
    laser = machine("laser")
    a, b = members(laser, 2)
    a.name = "Alice Heavy"
    book(a, laser, at(2, 17), 2)
    unmet_request(closed_window(laser), b, at(2, 17), 2)
    db.session.commit()
    return laser, a, b, make_member(role="admin")


def test_api_returns_the_review_figures(client, week) -> None:
    _, a, b, admin = week
    period = {"from": T0.isoformat(), "to": NOW.isoformat()}
    resp = client.get("/api/v1/fairness", query_string={**period, "machine": "laser"}, headers=_auth(admin))
    assert resp.status_code == 200
    body = resp.json
    assert body["period"]["machine"] == "laser" and body["scope"] == "Laser"
    assert body["gini"] == 0.5 and body["jain"] == 0.5  # used (2, 0); satisfaction (1, 0)
    rows = {m["label"]: m for m in body["members"]}
    assert rows["Alice Heavy"]["used_hours"] == 2 and rows[b.name]["satisfaction"] == 0
    assert body["totals"]["unmet_hours"] == 2
    assert body["statements"][0] == "a second laser cutter would have met 100 % of the period's unmet evening demand"
    assert len(body["heatmap"]["demand"]) == 7 and len(body["heatmap"]["unmet"][2]) == 24
    assert body["heatmap"]["unmet"][2][18] == 1
    assert {"lorenz", "worst_off", "machines", "lottery", "replay", "weeks"} <= set(body)


def test_api_privacy_matches_the_page(app, client, week, monkeypatch) -> None:
    _, a, b, _ = week
    auth = _auth(b)
    resp = client.get("/api/v1/fairness", headers=auth)
    assert resp.status_code == 403 and resp.json["error"]["code"] == "forbidden"
    monkeypatch.setitem(app.config, "FABLAB_REVIEW_PUBLIC", True)
    body = client.get("/api/v1/fairness", query_string={"from": T0.isoformat(), "to": NOW.isoformat()},
                      headers=auth).json
    assert "Alice Heavy" not in str(body)
    labels = {m["label"]: m for m in body["members"]}
    assert set(labels) == {a.pseudonym, b.pseudonym} and labels[b.pseudonym]["is_you"]
    assert all(m["member_id"] is None for m in body["members"])
    assert body["you"]["label"] == b.pseudonym


def test_api_errors_and_openapi(client, week) -> None:
    _, _, _, admin = week
    auth = _auth(admin)
    assert client.get("/api/v1/fairness").status_code == 401
    assert client.get("/api/v1/fairness?machine=nope", headers=auth).status_code == 404
    bad = client.get("/api/v1/fairness", query_string={"from": NOW.isoformat(), "to": T0.isoformat()},
                     headers=auth)
    assert bad.status_code == 400 and bad.json["error"]["code"] == "bad_period"
    assert client.get("/api/v1/fairness?from=yesterday", headers=auth).status_code == 400
    doc = client.get("/api/v1/openapi.json").json
    assert "/fairness" in doc["paths"] and "get" in doc["paths"]["/fairness"]
    names = {p["name"] for p in doc["paths"]["/fairness"]["get"]["parameters"]}
    assert names == {"machine", "type", "from", "to"}


def _check_svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title = root.find(f"{SVG}title")
    desc = root.find(f"{SVG}desc")
    assert title is not None and title.text and desc is not None and desc.text
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    return root


def test_charts_are_well_formed_titled_svg(week) -> None:
    laser, a, b, _ = week
    r = review(viewer=b)
    svgs = charts.review_charts(r)
    assert set(svgs) == {"lorenz", "usage", "heat", "weeks"}
    for text in svgs.values():
        _check_svg(text)
    assert "Gini 0.50" in ET.fromstring(svgs["lorenz"]).find(f"{SVG}title").text
    usage = ET.fromstring(svgs["usage"])
    labels = [t.text for t in usage.iter(f"{SVG}text")]
    assert "Alice Heavy" in labels and f"{b.name} (you)" in labels


def test_chart_text_is_escaped() -> None:
    evil = '<script>alert("x")</script> & co'
    text = charts.usage_bars_svg([charts.Bar(evil, 3, 4, True), charts.Bar("B", 1, 1)])
    root = _check_svg(text)
    assert "<script>" not in text
    assert any((t.text or "").startswith(evil + " (you): 3 h used") for t in root.iter(f"{SVG}title"))
    empty = charts.trend_svg([])
    _check_svg(empty)
    _check_svg(charts.lorenz_svg([(0.0, 0.0), (1.0, 1.0)], 0.0))
    heat = svc.HeatView(tuple((0.0,) * 24 for _ in range(7)), tuple((1.0,) * 24 for _ in range(7)),
                        tuple((0.0,) * 24 for _ in range(7)))
    _check_svg(charts.heatmap_svg(heat))


def test_many_members_are_summarised_but_you_stay_visible() -> None:
    bars = [charts.Bar(f"M{i}", 100 - i, 100 - i, is_you=i == 70) for i in range(80)]
    root = _check_svg(charts.usage_bars_svg(bars, limit=40))
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "40 others (average)" in labels and "M70 (you)" in labels and "M41" not in labels
