"""Two gunicorn workers in Prometheus multiprocess mode, started with deploy/gunicorn.conf.py: N requests
spread over both, and a scrape (answered by either) sums to N; a worker that exits keeps its counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from fablab import create_app
from fablab.extensions import db
from tests.ops.conftest import parse, value
from tests.support.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
HEALTHZ = {"method": "GET", "route": "/healthz", "status": "200"}


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except urllib.error.URLError:
        return 0, b""


def per_process(folder: Path) -> dict[int, float]:
    """/healthz requests counted by each worker process, read from its own counter file."""
    out = {}
    for f in folder.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(f)], accumulate=False):
            for s in metric.samples:
                if s.name == "fablab_http_requests_total" and s.labels.get("route") == "/healthz":
                    out[int(f.stem.split("_")[1])] = out.get(int(f.stem.split("_")[1]), 0) + s.value
    return out


@pytest.fixture
def gunicorn(tmp_path: Path):
    db_url = f"sqlite:///{tmp_path / 'lab.db'}"
    secret = "mp-" + uuid.uuid4().hex
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "SQLALCHEMY_DATABASE_URI": db_url,
                      "SECRET_KEY": secret})
    with app.app_context():
        from fablab.database import upgrade_db

        upgrade_db()
        db.engine.dispose()
    metrics_dir = tmp_path / "metrics"
    port = free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "FABLAB_DATABASE_URL": db_url,
           "FABLAB_SECRET_KEY": secret, "FABLAB_UPLOAD_DIR": str(tmp_path / "uploads"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "firmware-bridge")])}
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                             "-w", "2", "-b", f"127.0.0.1:{port}", "fablab:create_app()"],
                            cwd=tmp_path, env=env, stdout=log, stderr=log)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while get(base + "/readyz")[0] != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail((tmp_path / "gunicorn.log").read_text())
        time.sleep(0.2)
    yield base, metrics_dir, proc, tmp_path / "gunicorn.log"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_two_workers_sum_to_the_requests_made(gunicorn) -> None:
    base, metrics_dir, master, log = gunicorn
    # Batches of concurrent requests until both workers have answered some (the second one may still be
    # loading the app when the first is ready); N is what was sent in all.
    n = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        while n < 800:
            statuses = list(pool.map(lambda _: get(base + "/healthz")[0], range(40)))
            assert statuses == [200] * 40
            n += 40
            if len(per_process(metrics_dir)) == 2:
                break
    counts = per_process(metrics_dir)
    assert len([c for c in counts.values() if c > 0]) == 2, counts  # both workers answered some
    assert sum(counts.values()) == n
    for _ in range(3):  # whichever worker answers the scrape, the sum is the same
        status, body = get(base + "/metrics")
        assert status == 200
        assert value(parse(body.decode()), "fablab_http_requests_total", HEALTHZ) == n

    # A worker ends (recycled or crashed): gunicorn starts another, child_exit marks the old one dead,
    # and its counts stay in the sums.
    victim = next(iter(counts))
    os.kill(victim, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while victim in {int(p) for p in _children(master.pid)} or len(_children(master.pid)) < 2:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    status, body = get(base + "/metrics")
    assert status == 200
    assert value(parse(body.decode()), "fablab_http_requests_total", HEALTHZ) == n
    assert "Traceback" not in log.read_text()


def _children(pid: int) -> list[str]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return path.read_text().split() if path.exists() else []
