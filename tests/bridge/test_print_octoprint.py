"""The OctoPrint transfer against a real OctoPrint (tests/support/octoprint_server.py) and its virtual
printer: status, upload (not selected), start on JobStart, progress and the end, through the bridge."""

from __future__ import annotations

import hashlib
import logging
import time

import pytest
from fablab_bridge.octoprint import OctoPrintClient, RemoteError

from devices import events
from tests.bridge.conftest import wait_until
from tests.bridge.test_print_jobs_marlin import offer, wait_result
from tests.support.file_server import FileServer
from tests.support.octoprint_server import start_octoprint


@pytest.fixture(scope="module")
def octoprint(tmp_path_factory: pytest.TempPathFactory):
    server = start_octoprint(tmp_path_factory.mktemp("octoprint"))
    yield server
    server.close()


def small_gcode(moves: int = 40) -> bytes:
    lines = ["; a test part", "G28", "G90", "M104 S0"]
    lines += [f"G1 X{10 + i % 50} Y{10 + (i * 3) % 50} F6000" for i in range(moves)]
    lines += ["M84"]
    return ("\n".join(lines) + "\n").encode()


def test_client_status_upload_and_refusals(octoprint):
    client = OctoPrintClient(octoprint.url, octoprint.api_key)
    assert client.version()["server"].startswith("1.11")
    assert client.poll().state == "idle"  # connected to the virtual printer, nothing printing
    data = small_gcode()
    sent: list[tuple[int, int]] = []
    client.upload([data[:100], data[100:]], len(data), "fablab-client-test.gcode", lambda d, t: sent.append((d, t)),
                  cancelled=lambda: False)
    assert sent[-1] == (len(data), len(data))
    status, info = octoprint.call("GET", "/api/files/local/fablab-client-test.gcode")
    assert status == 200 and info["size"] == len(data)
    assert octoprint.call("GET", "/api/job")[1]["job"]["file"]["name"] is None  # uploaded, not selected
    client.delete("fablab-client-test.gcode")
    assert octoprint.call("GET", "/api/files/local/fablab-client-test.gcode")[0] == 404
    client.delete("fablab-client-test.gcode")  # already gone: not an error
    with pytest.raises(RemoteError) as exc:
        OctoPrintClient(octoprint.url, "WRONGKEY" * 4).poll()
    assert exc.value.status == 403 and "WRONGKEY" not in exc.value.reason
    with pytest.raises(RemoteError) as exc:
        client.start("no-such-file.gcode")
    assert exc.value.status == 404


def test_offer_ready_start_progress_and_end_through_the_bridge(octoprint, make_bridge, recorder, uid, tmp_path,
                                                               caplog):
    caplog.set_level(logging.DEBUG)
    m = uid("mk4")
    rec = recorder()
    make_bridge([{"id": m, "driver": "octoprint", "transfer": "octoprint", "octoprint_url": octoprint.url,
                  "octoprint_api_key": octoprint.api_key, "poll_interval": 0.3}], bridge_id=uid("b"),
                state_dir=tmp_path / "state")
    rec.wait_state(m, "idle")
    data = small_gcode(60)
    job = uid("job")
    with FileServer() as files:
        rec.publish(offer(m, files.add("part.gcode", data), data, job_id=job, transfer="octoprint",
                          name="part.gcode"))
        wait_result(rec, m, job, "ready", timeout=30)
    remote = f"fablab-{hashlib.sha256(job.encode()).hexdigest()[:12]}.gcode"
    status, info = octoprint.call("GET", f"/api/files/local/{remote}")
    assert status == 200 and info["size"] == len(data)
    time.sleep(1.0)
    assert octoprint.call("GET", "/api/job")[1]["state"] == "Operational"  # not started without JobStart
    rec.publish(events.JobStart(src="server", machine=m, job_id=job, by="member at the kiosk"))
    wait_result(rec, m, job, "started", timeout=15)
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"], timeout=90)
    assert evs[1].detail == {"file": remote, "job_id": job}
    assert evs[2].reason == "done" and evs[2].detail["job_id"] == job
    rec.wait_state(m, "idle", timeout=10)
    states = rec.states(m)
    assert "printing" in states
    wait_until(lambda: octoprint.call("GET", f"/api/files/local/{remote}")[0] == 404, timeout=10,
               what="the printed file removed from OctoPrint")
    assert octoprint.api_key not in caplog.text  # the key is a secret: never in the bridge's log


def test_withdraw_of_a_ready_job_deletes_the_upload(octoprint, make_bridge, recorder, uid, tmp_path):
    m = uid("mk4")
    rec = recorder()
    make_bridge([{"id": m, "driver": "octoprint", "transfer": "octoprint", "octoprint_url": octoprint.url,
                  "octoprint_api_key": octoprint.api_key}], bridge_id=uid("b"), state_dir=tmp_path / "state")
    rec.wait_state(m, "idle")  # connected and subscribed: an offer before that is not seen (clean session)
    data = small_gcode(10)
    job = uid("job")
    with FileServer() as files:
        rec.publish(offer(m, files.add("w.gcode", data), data, job_id=job, transfer="octoprint", name="w.gcode"))
        wait_result(rec, m, job, "ready", timeout=30)
    remote = f"fablab-{hashlib.sha256(job.encode()).hexdigest()[:12]}.gcode"
    assert octoprint.call("GET", f"/api/files/local/{remote}")[0] == 200
    rec.publish(events.JobWithdraw(src="server", machine=m, job_id=job, reason="booking cancelled"))
    assert wait_result(rec, m, job, "withdrawn").reason == "booking cancelled"
    assert octoprint.call("GET", f"/api/files/local/{remote}")[0] == 404
