"""Forks: copyleft licences passed on, attribution to every ancestor, lineage as a tree, fork counts."""

from __future__ import annotations

import re

import pytest

from fablab.extensions import db
from fablab.models.designs import Design
from fablab.services import design_lineage as lineage_svc
from fablab.services import designs as svc
from tests.conftest import csrf_token, login

from .conftest import data, post_multipart


def test_copyleft_parent_forces_a_compatible_licence(app_ctx, make_member, make_design) -> None:
    parent = make_design(title="Gear", licence="CC-BY-SA-4.0")
    forker = make_member(name="Bo")
    with pytest.raises(svc.DesignError) as err:
        svc.fork_design(parent, forker, licence="CC-BY-4.0")
    assert err.value.status == 422 and err.value.code == "fork_licence_incompatible"
    assert "ShareAlike" in err.value.message
    assert db.session.get(Design, parent.id).forks_count == 0
    child = svc.fork_design(parent, forker, licence="GPL-3.0-or-later")  # one-way compatible
    assert child.licence == "GPL-3.0-or-later" and child.parent_id == parent.id
    with pytest.raises(svc.DesignError, match="GPL-3.0-or-later is copyleft"):
        svc.fork_design(child, forker, licence="CC-BY-SA-4.0")  # cannot go back


def test_fork_form_offers_only_allowed_licences_and_refuses_others(app, client, make_member, make_design) -> None:
    parent = make_design(title="PCB holder", licence="CERN-OHL-S-2.0")
    make_member("bo@example.org", name="Bo")
    login(client, "bo@example.org")
    page = client.get(f"/designs/{parent.id}/fork").get_data(as_text=True)
    offered = re.findall(r'<option[^>]*value="([^"]+)"', page)
    assert offered == ["CERN-OHL-S-2.0"]
    token = csrf_token(client, f"/designs/{parent.id}/fork")
    resp = post_multipart(client, f"/designs/{parent.id}/fork?v=1",
                          {"title": "Mine", "licence": "MIT", "csrf_token": token}, [])
    assert resp.status_code == 422 and "strongly reciprocal" in resp.get_data(as_text=True)
    resp = post_multipart(client, f"/designs/{parent.id}/fork?v=1",
                          {"title": "PCB holder, deeper", "licence": "CERN-OHL-S-2.0", "csrf_token": token},
                          [("part.stl", data("part_ascii.stl"))])
    assert resp.status_code == 302
    child = db.session.get(Design, int(resp.location.rsplit("/", 1)[1]))
    assert child.title == "PCB holder, deeper" and child.licence == "CERN-OHL-S-2.0"
    assert child.version(1).parent_version_id == parent.version(1).id
    # The uploaded part.stl replaced the parent's file of the same name.
    assert [f.meta["format"] for f in child.version(1).files] == ["stl-ascii"]


def test_permissive_parent_allows_any_open_licence(app_ctx, make_member, make_design) -> None:
    parent = make_design(licence="CC0-1.0")
    child = svc.fork_design(parent, make_member(), licence="CC-BY-SA-4.0", title="Now share-alike")
    assert child.licence == "CC-BY-SA-4.0"
    with pytest.raises(svc.DesignError) as err:
        svc.fork_design(parent, make_member(), licence="CC-BY-NC-4.0")
    assert err.value.code == "licence_not_open"


def test_lineage_and_attribution_over_three_generations(app, client, make_member, make_design) -> None:
    ada, bo, chen, dana = (make_member(name=n) for n in ("Ada", "Bo", "Chen", "Dana"))
    root = make_design(author=ada, title="Shelf bracket", licence="CC-BY-SA-4.0")
    svc.add_version(root, ada, files=[], changelog="Rounder edges", keep_file_ids=[f.id for f in root.version().files])
    child = svc.fork_design(root, bo, licence="CC-BY-SA-4.0", title="Bracket for 18 mm boards", version_number=1)
    sibling = svc.fork_design(root, dana, licence="GPL-3.0-or-later", title="Bracket, GPL")
    grandchild = svc.fork_design(child, chen, licence="CC-BY-SA-4.0", title="Bracket with cable hole")

    credits = lineage_svc.attribution(grandchild)
    assert [(c.title, c.author_name, c.version) for c in credits] == [
        ("Bracket for 18 mm boards", "Bo", 1), ("Shelf bracket", "Ada", 1)]
    assert db.session.get(Design, root.id).forks_count == 2 and db.session.get(Design, child.id).forks_count == 1

    tree = lineage_svc.lineage(child)  # ancestors down to this design, then its descendants
    assert tree.title == "Shelf bracket" and [c.title for c in tree.children] == ["Bracket for 18 mm boards"]
    me = tree.children[0]
    assert me.current and [c.title for c in me.children] == ["Bracket with cable hole"]
    full = lineage_svc.lineage(root)
    assert sorted(c.title for c in full.children) == ["Bracket for 18 mm boards", "Bracket, GPL"]
    assert full.size() == 4
    assert sibling.parent_id == root.id

    page = client.get(f"/designs/{grandchild.id}").get_data(as_text=True)
    attribution = page[page.index('class="card attribution"'):page.index("<h2>Versions")]
    assert "Shelf bracket" in attribution and "Ada" in attribution and "Bo" in attribution
    lineage = page[page.index('class="card lineage"'):page.index('id="made-here"')]
    assert lineage.index("Shelf bracket") < lineage.index("Bracket for 18 mm boards") < lineage.index(
        'aria-current="page">Bracket with cable hole')
