"""Adversarial uploads: peak memory and time of the web process for each sample, then of the worker that
finishes (or fails) it.

Each sample is uploaded through the real WSGI app (the API's multipart upload, Flask's test client) in a
fresh Python process, whose peak resident memory (getrusage max RSS) is the figure; the worker's job then
runs in another fresh process on the same database. A normal small STL is the baseline, measured the same
way in the same run. Targets (issue 14): the web process under 300 MB and the request answered in under
2 s for every sample (accepted for later processing, or refused with the reason).

Run: `.venv/bin/python bench/uploads.py [--keep DIR] [--only NAME ...]`. The samples are generated in a
temp dir each run (never committed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEAK_TARGET_MB = 300.0
TIME_TARGET_S = 2.0
MB = 1 << 20


# --- the samples -------------------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes | str]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, body in members.items():
            zf.writestr(name, body)


def _model(objects: str, build: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><model unit="millimeter" xmlns="http://schemas.microsoft.com/'
            f'3dmanufacturing/core/2015/02"><resources>{objects}</resources><build>{build}</build></model>')


def _dense_3mf(path: Path, triangles: int) -> None:
    """Millions of triangles in a small zip: the XML repeats itself, with a little noise (a comment every 50
    triangles) so that it compresses about 150:1, under the ratio a zip-bomb check would flag."""
    head = ('<object id="1" type="model"><mesh><vertices><vertex x="0" y="0" z="0"/><vertex x="10" y="0" z="0"/>'
            '<vertex x="0" y="10" z="0"/></vertices><triangles>')
    block = '<triangle v1="0" v2="1" v3="2"/>' * 50
    body = "".join(block + f"<!--{os.urandom(4).hex()}-->" for _ in range(triangles // 50))
    obj = head + body + "</triangles></mesh></object>"
    _zip(path, {"[Content_Types].xml": "<Types/>", "3D/3dmodel.model": _model(obj, '<item objectid="1"/>')})


def _zip_bomb_3mf(path: Path, unpacked: int = 1 << 30) -> None:
    """A model part of 1 GB of spaces: about 1 MB zipped."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("3D/3dmodel.model", "w", force_zip64=True) as out:
            out.write(b'<?xml version="1.0"?><model unit="millimeter">')
            block = b" " * (8 * MB)
            for _ in range(unpacked // len(block)):
                out.write(block)
            out.write(b"</model>")


def _components_3mf(path: Path) -> None:
    """Ten levels of ten components each: 10^10 triangles from a few KB."""
    objs = ['<object id="0" type="model"><mesh><vertices><vertex x="0" y="0" z="0"/><vertex x="1" y="0" z="0"/>'
            '<vertex x="0" y="1" z="0"/></vertices><triangles><triangle v1="0" v2="1" v3="2"/></triangles></mesh>'
            '</object>']
    for level in range(1, 11):
        comps = "".join(f'<component objectid="{level - 1}" transform="1 0 0 0 1 0 0 0 1 {k} 0 0"/>' for k in range(10))
        objs.append(f'<object id="{level}" type="model"><components>{comps}</components></object>')
    _zip(path, {"[Content_Types].xml": "<Types/>", "3D/3dmodel.model": _model("".join(objs), '<item objectid="10"/>')})


def _many_entries_3mf(path: Path, n: int = 200_000) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("3D/3dmodel.model", "<model/>")
        for i in range(n):
            zf.writestr(f"m/{i}", b"")


def _stl(path: Path, triangles: int) -> None:
    import numpy as np

    from fablab.domain.mesh_meta import _STL_RECORD

    rng = np.random.default_rng(3)
    rec = np.zeros(triangles, dtype=_STL_RECORD)
    rec["v"] = rng.uniform(0, 100, (triangles, 3, 3)).astype(np.float32)
    with open(path, "wb") as fh:
        fh.write(b"bench".ljust(80) + triangles.to_bytes(4, "little") + rec.tobytes())


def _png(path: Path, width: int, height: int, noise: bool = False) -> None:
    from PIL import Image

    if noise:
        img = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        img = Image.new("L", (width, height), 200)
    img.save(path, format="PNG", optimize=True)


def make_samples(workdir: Path) -> list[tuple[str, Path, str]]:
    """(name, path, what it stands for) for every sample, baseline first."""
    w = workdir
    samples: list[tuple[str, Path, str]] = []

    def add(name: str, what: str) -> Path:
        path = w / name
        samples.append((name, path, what))
        return path

    add("baseline.stl", "a normal small part (112 triangles)").write_bytes(
        (ROOT / "tests/data/designs/part_binary.stl").read_bytes())
    _png(add("photo.png", "a normal 1600 x 1200 photo (noise)"), 1600, 1200, noise=True)
    _dense_3mf(add("dense-small.3mf", "millions of triangles in a few hundred KB (the 23 s / 1 GB case)"), 1_700_000)
    _dense_3mf(add("dense-large.3mf", "more triangles, about twice that (the worker killed at 1.6 GB)"), 4_000_000)
    _zip_bomb_3mf(add("bomb-1gb.3mf", "zip bomb: 1 GB of XML in ~1 MB"))
    _components_3mf(add("components.3mf", "components multiplying one triangle to 10^10"))
    _many_entries_3mf(add("entries-200k.3mf", "a zip directory of 200,000 entries"))
    add("header-4g.stl", "binary STL whose header claims 4 billion triangles").write_bytes(
        b"bench".ljust(80) + (4_000_000_000).to_bytes(4, "little") + bytes(50 * 1000))
    _stl(add("big-40mb.stl", "a real 40 MB STL (800,000 triangles)"), 800_000)
    add("faces-2m.obj", "OBJ with 2,000,000 faces on three vertices").write_bytes(
        b"v 0 0 0\nv 1 0 0\nv 0 1 0\n" + b"f 1 2 3\n" * 2_000_000)
    _png(add("pixels-7740.png", "PNG of 7740 x 7740 pixels, one colour (the 800 MB case)"), 7740, 7740)
    add("deep-2000.svg", "SVG nested 2,000 deep").write_bytes(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10mm" height="10mm">' + b"<g>" * 2000 + b"<rect/>"
        + b"</g>" * 2000 + b"</svg>")
    chain = "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    add("laughs.svg", "SVG with entity expansion (billion laughs)").write_text(
        f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">{chain}]>'
        '<svg xmlns="http://www.w3.org/2000/svg">&j;</svg>')
    return samples


# --- one measurement in a fresh process ------------------------------------------------------------------------


def _config(state: Path) -> dict[str, object]:
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{state / 'bench.db'}", "INSTANCE_PATH": str(state),
            "SECRET_KEY": "bench", "FABLAB_UPLOAD_DIR": str(state / "uploads")}


def _peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over
    exec, so a child started by a parent that once used 1 GB would report 1 GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def child_web(sample: Path, state: Path) -> dict[str, object]:
    from fablab import create_app
    from fablab.database import upgrade_db
    from fablab.extensions import db
    from fablab.models import Member
    from fablab.services.members import create_api_token

    app = create_app(_config(state))
    with app.app_context():
        upgrade_db()
        member = Member(member_no=1, email="bench@example.org", name="Bench")
        db.session.add(member)
        db.session.commit()
        token = create_api_token(member)
        db.session.commit()
    client = app.test_client()
    ready_mb = _peak_mb()
    with open(sample, "rb") as fh:
        start = time.perf_counter()
        resp = client.post("/api/v1/designs", headers={"Authorization": f"Bearer {token}"},
                           data={"title": "Bench", "licence": "MIT", "files": (fh, sample.name)},
                           content_type="multipart/form-data")
        secs = time.perf_counter() - start
    body = resp.get_json(silent=True) or {}
    if resp.status_code == 201:
        f = body["latest"]["files"][0]
        answer = f"accepted, {f['status']}"
    else:
        answer = f"refused: {body.get('error', {}).get('message', '')[:90]}"
    return {"status": resp.status_code, "answer": answer, "secs": secs, "peak_mb": _peak_mb(), "ready_mb": ready_mb}


def child_worker(state: Path) -> dict[str, object]:
    from sqlalchemy import select

    from fablab import create_app
    from fablab.extensions import db
    from fablab.models.designs import DesignFile
    from fablab.models.types import utcnow
    from fablab.worker.jobs import run_jobs

    app = create_app(_config(state))
    with app.app_context():
        ready_mb = _peak_mb()
        start = time.perf_counter()
        result = run_jobs(utcnow(), ["process_pending_uploads"])["process_pending_uploads"]
        secs = time.perf_counter() - start
        f = db.session.scalars(select(DesignFile)).first()
        outcome = "-" if f is None else f.status + (f": {f.problem[:80]}" if f.problem else "")
        if f is not None and f.meta and "triangles" in f.meta:
            outcome += f" ({f.meta['triangles']:,} triangles)"
    return {"result": repr(result), "outcome": outcome, "secs": secs, "peak_mb": _peak_mb(), "ready_mb": ready_mb}


def _run_child(*args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the run ---------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", help="generate the samples into this directory and keep them")
    parser.add_argument("--only", nargs="*", help="sample names to run (the baseline always runs)")
    parser.add_argument("--child-web", nargs=2, metavar=("SAMPLE", "STATE"), help=argparse.SUPPRESS)
    parser.add_argument("--child-worker", metavar="STATE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_web:
        print(json.dumps(child_web(Path(args.child_web[0]), Path(args.child_web[1]))))
        return 0
    if args.child_worker:
        print(json.dumps(child_worker(Path(args.child_worker))))
        return 0

    tmp = tempfile.TemporaryDirectory(prefix="fablab-uploads-")
    workdir = Path(args.keep or tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    samples = make_samples(workdir)
    if args.only:
        samples = [s for i, s in enumerate(samples) if i == 0 or s[0] in args.only]
    print(f"{len(samples)} samples generated in {time.perf_counter() - t0:.1f} s (web: API upload in a fresh process "
          f"each; peak = max RSS of that process; worker: process_pending_uploads in another)\n")
    head = (f"{'sample':<20} {'size':>9}  {'web':>4} {'time s':>7} {'peak MB':>8} {'x base':>6}  "
            f"{'worker s':>8} {'peak MB':>8}  answer / worker outcome")
    print(head)
    print("-" * len(head))
    ok = True
    base_peak = base_time = None
    for name, path, what in samples:
        state = workdir / f"state-{name}"
        state.mkdir(exist_ok=True)
        web = _run_child("--child-web", str(path), str(state))
        if "error" in web:
            print(f"{name:<20} web process failed: {web['error']}")
            ok = False
            continue
        worker = _run_child("--child-worker", str(state))
        if base_peak is None:
            base_peak, base_time = float(web["peak_mb"]), float(web["secs"])
        size = path.stat().st_size
        size_s = f"{size / MB:.1f} MB" if size >= MB else f"{size / 1024:.0f} KB"
        hit = float(web["peak_mb"]) < PEAK_TARGET_MB and float(web["secs"]) < TIME_TARGET_S and int(web["status"]) < 500
        ok &= hit
        wsecs = f"{float(worker['secs']):8.2f}" if "secs" in worker else f"{'-':>8}"
        wpeak = f"{float(worker['peak_mb']):8.0f}" if "peak_mb" in worker else f"{'-':>8}"
        print(f"{name:<20} {size_s:>9}  {web['status']:>4} {float(web['secs']):7.2f} {float(web['peak_mb']):8.0f} "
              f"{float(web['peak_mb']) / base_peak:6.2f}  {wsecs} {wpeak}  {'' if hit else 'MISSED '}{web['answer']}")
        print(f"{'':<20} {what}; worker: {worker.get('outcome', worker.get('error'))}")
    print(f"\nbaseline: web peak {base_peak:.0f} MB (the app with numpy and Pillow loaded), request {base_time:.2f} s")
    print(f"targets: web peak < {PEAK_TARGET_MB:.0f} MB and request < {TIME_TARGET_S:.0f} s for every sample: "
          f"{'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
