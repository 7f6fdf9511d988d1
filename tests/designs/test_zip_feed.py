"""Zip download with a README stating licence and attribution; the Atom feed (RFC 4287) of designs."""

from __future__ import annotations

import hashlib
import io
import xml.etree.ElementTree as ET
import zipfile
from datetime import timedelta

import pytest

from fablab.models.types import utcnow
from fablab.services import designs as svc

from .conftest import data

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)

ATOM = "{http://www.w3.org/2005/Atom}"


def test_zip_holds_files_and_a_readme_with_licence_and_attribution(app, client, make_member, make_design) -> None:
    ada, bo = make_member(name="Ada"), make_member(name="Bo")
    root = make_design(author=ada, title="Lamp shade", licence="CC-BY-SA-4.0",
                       files=[("shade.stl", data("part_binary.stl")), ("README.md", b"# my own notes\n")])
    fork = svc.fork_design(root, bo, licence="CC-BY-SA-4.0", title="Lamp shade, hexagonal",
                           files=[svc.Upload("plate.svg", io.BytesIO(data("plate.svg")))])
    resp = client.get(f"/designs/{fork.id}/download.zip", buffered=True)
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert "lamp-shade-hexagonal-v1.zip" in resp.headers["Content-Disposition"]
    zf = zipfile.ZipFile(io.BytesIO(resp.data))
    assert zf.testzip() is None
    names = sorted(zf.namelist())
    assert names == ["lamp-shade-hexagonal-v1/README (1).md", "lamp-shade-hexagonal-v1/README.md",
                     "lamp-shade-hexagonal-v1/plate.svg", "lamp-shade-hexagonal-v1/shade.stl"]
    assert zf.read("lamp-shade-hexagonal-v1/shade.stl") == data("part_binary.stl")
    assert zf.read("lamp-shade-hexagonal-v1/README (1).md") == b"# my own notes\n"  # theirs, kept
    readme = zf.read("lamp-shade-hexagonal-v1/README.md").decode()
    assert "Creative Commons Attribution-ShareAlike 4.0 (SPDX: CC-BY-SA-4.0)" in readme
    assert "Author: Bo" in readme
    assert "“Lamp shade” version 1 by Ada, licensed CC-BY-SA-4.0" in readme
    assert f"http://localhost/designs/{fork.id}" in readme
    assert hashlib.sha256(data("plate.svg")).hexdigest() in readme
    assert client.get(f"/designs/{fork.id}/download.zip?v=3").status_code == 404


def test_atom_feed_is_valid_with_stable_ids(app, client, make_member, make_design) -> None:
    ada = make_member(name="Ada")
    now = utcnow()
    first = make_design(author=ada, title="Hinge", tags="hinge", now=now - timedelta(days=2))
    svc.add_version(first, ada, files=[], changelog="Stronger pin",
                    keep_file_ids=[f.id for f in first.version().files], now=now - timedelta(days=1))
    svc.fork_design(first, make_member(name="Bo"), licence="CC-BY-4.0", title="Hinge & <friends>", now=now)

    resp = client.get("/designs/feed.atom")
    assert resp.status_code == 200 and resp.mimetype == "application/atom+xml"
    root = ET.fromstring(resp.data)
    assert root.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{required}") is not None
    assert root.find(f"{ATOM}link[@rel='self']").get("href") == "http://localhost/designs/feed.atom"
    entries = root.findall(f"{ATOM}entry")
    titles = [e.findtext(f"{ATOM}title") for e in entries]
    assert titles == ["New fork: Hinge & <friends>", "Hinge, version 2", "New design: Hinge"]
    for e in entries:
        assert e.findtext(f"{ATOM}id").startswith("tag:localhost,")
        assert e.find(f"{ATOM}author/{ATOM}name").text
        assert e.findtext(f"{ATOM}updated").endswith("Z")
        assert e.find(f"{ATOM}link[@rel='alternate']").get("href").startswith("http://localhost/designs/")
    assert entries[1].findtext(f"{ATOM}summary").startswith("Stronger pin")
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(set(ids)) == 3
    assert ids == [e.findtext(f"{ATOM}id") for e in ET.fromstring(client.get("/designs/feed.atom").data)
                   .findall(f"{ATOM}entry")]  # stable across requests
