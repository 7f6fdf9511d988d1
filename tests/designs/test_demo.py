"""The demo designs: real generated files with correct geometry, forks with lineage, versions, made-here."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from fablab.demo.designs import seed_designs_demo
from fablab.extensions import db
from fablab.models.designs import Design, DesignFile, DesignMade
from fablab.services import design_lineage as lineage_svc
from fablab.services import designs as svc
from tests.designs.conftest import stored_files

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


def test_seed_designs_demo(app_ctx, make_member, make_machine) -> None:
    machines = {slug: make_machine(slug, type_slug=t) for slug, t in (
        ("prusa-1", "3d_printer"), ("prusa-2", "3d_printer"), ("laser", "laser_cutter"))}
    members = [make_member(name=f"Member {i}") for i in range(6)]
    summary = seed_designs_demo(machines, members, random.Random(5))
    assert summary.startswith("designs: 12 (5 forks, 3 later versions)")

    cube = db.session.scalars(select(Design).where(Design.title == "Calibration cube 20 mm")).one()
    stl = next(f for f in cube.version(1).files if f.ext == ".stl")
    assert abs(stl.meta["volume_mm3"] - 8000) < 1e-3 and stl.meta["size_mm"] == [20.0, 20.0, 20.0]
    assert cube.latest_version == 2 and cube.thumb_key
    gcode = next(f for f in cube.version(1).files if f.ext == ".gcode").meta
    assert gcode["slicer"] == "PrusaSlicer" and gcode["print_time_s"] == 14 * 60 + 32
    assert gcode["layer_height_mm"] == 0.2 and gcode["nozzle_temp_c"] == 215 and gcode["filament_g"] > 0
    flange = db.session.scalars(select(Design).where(Design.title == "Hex spacer M4 with flange")).one()
    assert [c.title for c in lineage_svc.attribution(flange)] == ["Hex spacer M4, taller", "Hex spacer M3"]
    panel = db.session.scalars(select(Design).where(Design.title == "Finger-joint box panel")).one()
    svg = panel.version().files[0]
    assert svg.svg_safe and abs(svg.meta["width_mm"] - 100) < 1e-6
    made = db.session.scalar(select(func.count(DesignMade.id)))
    assert made == db.session.scalar(select(func.sum(Design.made_count))) and made > 0
    for f in db.session.scalars(select(DesignFile)):
        assert svc.file_store().path(f.storage_key).exists()
    assert len(stored_files(app_ctx)) >= 12
