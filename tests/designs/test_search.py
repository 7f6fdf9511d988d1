"""Search by text, tag, licence and machine type; sort by newest, most forked, most made; htmx partial."""

from __future__ import annotations

from datetime import timedelta

from fablab.models.types import utcnow
from fablab.services import design_discovery as discovery
from fablab.services import designs as svc


def _titles(result: discovery.SearchResult) -> list[str]:
    return [d.title for d in result.designs]


def test_search_filters_and_sorts(app_ctx, make_member, make_machine, make_design) -> None:
    make_machine("laser", type_slug="laser_cutter")
    make_machine("printer", type_slug="3d_printer")
    laser, printer = (svc.machine_types_by_slugs([s])[0] for s in ("laser_cutter", "3d_printer"))
    ada = make_member(name="Ada Lovelace")
    now = utcnow()
    box = make_design(author=ada, title="Finger-joint Box", licence="CC-BY-4.0", tags="box, laser",
                      description="A 100% plywood box with living hinge", machine_types=[laser],
                      now=now - timedelta(days=3))
    hook = make_design(title="Wall hook", licence="CC-BY-SA-4.0", tags="hook, PLA", machine_types=[printer],
                       now=now - timedelta(days=2))
    clip = make_design(title="Cable clip", licence="CC0-1.0", tags="clip, pla", machine_types=[printer],
                       description="Holds a cable to a desk_edge", now=now - timedelta(days=1))

    assert _titles(discovery.search_designs()) == ["Cable clip", "Wall hook", "Finger-joint Box"]
    assert _titles(discovery.search_designs("BOX")) == ["Finger-joint Box"]
    assert _titles(discovery.search_designs("plywood hinge")) == ["Finger-joint Box"]  # every word, any field
    assert _titles(discovery.search_designs("lovelace")) == ["Finger-joint Box"]  # the author
    assert _titles(discovery.search_designs("plywood hook")) == []
    assert _titles(discovery.search_designs("100%")) == ["Finger-joint Box"]  # LIKE wildcards are literal
    assert _titles(discovery.search_designs("desk_edge")) == ["Cable clip"]
    assert _titles(discovery.search_designs("cable_to")) == []  # "_" is not a one-character wildcard
    assert _titles(discovery.search_designs(tag="PLA")) == ["Cable clip", "Wall hook"]
    assert _titles(discovery.search_designs(tag="la")) == []  # tags match exactly
    assert _titles(discovery.search_designs(licence="CC0-1.0")) == ["Cable clip"]
    assert _titles(discovery.search_designs(machine_type="laser_cutter")) == ["Finger-joint Box"]
    assert _titles(discovery.search_designs("clip", tag="pla", licence="CC0-1.0", machine_type="3d_printer")) == [
        "Cable clip"]

    svc.fork_design(hook, make_member(), licence="CC-BY-SA-4.0", title="Hook, bigger")
    svc.fork_design(hook, make_member(), licence="CC-BY-SA-4.0", title="Hook, double")
    svc.fork_design(box, make_member(), licence="CC-BY-4.0", title="Box, taller")
    assert _titles(discovery.search_designs(sort="forks"))[:2] == ["Wall hook", "Finger-joint Box"]
    made_by = make_member()
    printer_machine = make_machine("printer-2", type_slug="3d_printer")
    for _ in range(3):
        discovery.record_made(clip, made_by, machine=printer_machine)
    discovery.record_made(box, made_by, machine=printer_machine)
    assert _titles(discovery.search_designs(sort="made"))[:2] == ["Cable clip", "Finger-joint Box"]

    page = discovery.search_designs(per_page=2, page=2)
    assert page.total == 6 and page.pages == 3 and len(page.designs) == 2


def test_index_page_and_htmx_partial(app, client, make_design) -> None:
    make_design(title="Wall hook", tags="hook")
    make_design(title="Cable clip", tags="clip")
    page = client.get("/designs").get_data(as_text=True)
    assert "<form" in page and 'hx-get="/designs"' in page and 'id="design-results"' in page
    assert "Wall hook" in page and "Cable clip" in page
    partial = client.get("/designs?q=hook", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert partial.lstrip().startswith('<section id="design-results"') and "<form" not in partial
    assert "Wall hook" in partial and "Cable clip" not in partial
    assert "Cable clip" in client.get("/designs?tag=clip").get_data(as_text=True)
    assert client.get("/designs?page=x&sort=bogus").status_code == 200
