"""Queued prints on one machine, the bridge's side (``machine/{m}/job/*``).

``job/offer``: download the file from the server's one-time URL into the spool directory (never under the
offered name: under a digest of the job id), no more than the offered size, checked against its sha256;
transfer it by the machine's ``transfer`` (Marlin SD upload, kept in the spool for streaming, OctoPrint or
Moonraker upload) and answer ``job/result`` ready. Only ``job/start`` (the member confirmed at the
machine) starts the print; ``job/withdraw`` stops a download or transfer, or drops a ready file, and is
answered withdrawn. Every failure is answered ``failed`` with the reason.

One job per machine at a time. Its state is a JSON file in the spool directory: a job that was ready
survives a bridge restart (ready is announced again and ``job/start`` works); one cut off mid-download or
mid-transfer is reported failed ("bridge restarted ...") and its file removed, for the server to offer it
again, since a half-written SD file or upload cannot be trusted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devices import events
from devices.gcode_stream import GrblStream, MarlinStream, gcode_lines
from devices.marlin_upload import sd_name, start_commands, upload_stream
from fablab_bridge.moonraker import MoonrakerClient
from fablab_bridge.octoprint import OctoPrintClient, RemoteError, watch_print
from fablab_bridge.port_task import PortTask

if TYPE_CHECKING:
    from fablab_bridge.machine import MachineRunner

log = logging.getLogger(__name__)
CHUNK = 64 * 1024
PROGRESS_STEP, PROGRESS_EVERY_S = 0.05, 2.0


class Withdrawn(Exception):
    pass


class Stopped(Exception):
    """The bridge is stopping: the job's state stays on disk for the next start to judge."""


class Failed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass
class Job:
    job_id: str
    name: str
    size: int
    sha256: str
    transfer: str
    file_url: str = dataclasses.field(default="", repr=False)  # one-time: not kept on disk
    phase: str = "download"  # download, transfer, ready, printing
    remote: str | None = None  # the file's name on the machine (8.3 SD name, OctoPrint/Moonraker name)


class Progress:
    """JobProgress, at most every 5 % or 2 s (and the last one always)."""

    def __init__(self, jobs: PrintJobs, job: Job, phase: str) -> None:
        self.jobs, self.job, self.phase = jobs, job, phase
        self._last_t, self._last_frac = 0.0, -1.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        frac = done / total if total else 1.0
        if done < total and frac - self._last_frac < PROGRESS_STEP and now - self._last_t < PROGRESS_EVERY_S:
            return
        self._last_t, self._last_frac = now, frac
        self.jobs.link_publish(events.JobProgress(src=self.jobs.r.src, machine=self.jobs.r.id,
                                                  job_id=self.job.job_id, phase=self.phase,
                                                  done=min(done, total), total=total))


class PrintJobs:
    def __init__(self, runner: MachineRunner, spool_dir: Path) -> None:
        self.r = runner
        self.cfg = runner.cfg
        self.dir = spool_dir / hashlib.sha256(runner.id.encode()).hexdigest()[:16]
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.job: Job | None = None
        self._cancel: str | None = None  # a withdraw's reason, seen by the download and transfer
        self._task: PortTask | None = None
        self._unsent: list[events.JobResult] = []
        self._restore()
        for sub, handler in (("job/offer", self.handle_offer), ("job/start", self.handle_start),
                             ("job/withdraw", self.handle_withdraw)):
            runner.link.subscribe(events.machine_topic(runner.id, sub), handler)
        runner.link.on_connected(self._flush)

    # ================================================================================ state on disk
    @property
    def _state_path(self) -> Path:
        return self.dir / "job.json"

    def _file(self, job: Job) -> Path:
        return self.dir / (hashlib.sha256(job.job_id.encode()).hexdigest()[:24] + ".gcode")

    def _save(self, job: Job) -> None:
        tmp = self._state_path.with_suffix(".tmp")
        state = dataclasses.asdict(job) | {"file_url": ""}
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self._state_path)

    def _forget(self, job: Job) -> None:
        with self.lock:
            if self.job is job:
                self.job = None
        for path in (self._state_path, self._file(job), self._file(job).with_suffix(".part")):
            path.unlink(missing_ok=True)

    def _restore(self) -> None:
        try:
            job = Job(**json.loads(self._state_path.read_text()))
        except FileNotFoundError:
            return
        except (ValueError, TypeError) as exc:
            log.warning("%s: unreadable job state dropped: %s", self.r.id, exc)
            self._state_path.unlink(missing_ok=True)
            return
        if job.phase in ("download", "transfer"):
            what = "download" if job.phase == "download" else "transfer to the machine"
            self._unsent.append(self._result(job, "failed", f"the bridge restarted during the {what}; "
                                                            "offer the job again"))
            self._forget(job)
        elif job.phase == "ready":
            self.job = job
            self._unsent.append(self._result(job, "ready"))
        elif job.transfer == "stream" and not self.r.ms.job_open:
            self._unsent.append(self._result(job, "failed", "the bridge restarted during the streamed print; "
                                                            "it cannot be resumed"))
            self._forget(job)
        else:  # printing: the job's end still names it
            if self.r.ms.job_open:
                self.job = job
                self.r.job_extra = {"job_id": job.job_id}
                threading.Thread(target=self._watch_end, args=(job,), daemon=True).start()
            else:
                self._forget(job)

    # ================================================================================ results
    def _result(self, job: Job | str, result: str, reason: str | None = None) -> events.JobResult:
        job_id = job if isinstance(job, str) else job.job_id
        if reason:
            reason = reason[:500]
        return events.JobResult(src=self.r.src, machine=self.r.id, job_id=job_id, result=result, reason=reason)

    def answer(self, job: Job | str, result: str, reason: str | None = None) -> None:
        msg = self._result(job, result, reason)
        log.info("%s: job %s %s%s", self.r.id, msg.job_id, result, f": {reason}" if reason else "")
        if not self.r.link.publish_now(msg):
            self._unsent.append(msg)  # sent on the next connect

    def _flush(self) -> None:
        pending, self._unsent = self._unsent, []
        for msg in pending:
            if not self.r.link.publish_now(msg):
                self._unsent.append(msg)

    def link_publish(self, msg: events.Message) -> None:
        self.r.link.publish_now(msg)

    # ================================================================================ handlers (MQTT thread)
    def _decode(self, topic: str, payload: bytes) -> events.Message | None:
        try:
            return events.decode(topic, payload)
        except events.ContractError as exc:
            log.warning("%s: ignoring malformed %s: %s", self.r.id, topic.rsplit("/", 1)[-1], exc.reason)
            return None

    def handle_offer(self, topic: str, payload: bytes) -> None:
        offer = self._decode(topic, payload)
        if not isinstance(offer, events.JobOffer):
            return
        with self.lock:
            current = self.job
            if current is not None and current.job_id == offer.job_id:
                if current.phase == "ready":
                    self.answer(current, "ready")  # a repeated offer: it is still here
                return
            if current is not None:
                self.answer(offer.job_id, "failed", f"the machine is busy with job {current.job_id} "
                                                    f"({current.phase}); offer it again later")
                return
            if self.cfg.transfer is None:
                self.answer(offer.job_id, "failed", "this machine's bridge is not set up for queued prints "
                                                    "(no transfer in its config)")
                return
            if offer.transfer != self.cfg.transfer:
                self.answer(offer.job_id, "failed", f"this machine takes transfer {self.cfg.transfer}, "
                                                    f"not {offer.transfer}")
                return
            job = Job(job_id=offer.job_id, name=offer.name, size=offer.size, sha256=offer.sha256,
                      transfer=offer.transfer, file_url=offer.file_url)
            self.job, self._cancel = job, None
            self._save(job)
        threading.Thread(target=self._prepare, args=(job,), name=f"{self.r.id}-job", daemon=True).start()

    def handle_start(self, topic: str, payload: bytes) -> None:
        msg = self._decode(topic, payload)
        if not isinstance(msg, events.JobStart):
            return
        with self.lock:
            job = self.job
            if job is None or job.job_id != msg.job_id:
                self.answer(msg.job_id, "failed", "no such job on this machine (never offered, withdrawn "
                                                  "or failed); offer it again")
                return
            if job.phase != "ready":
                if job.phase != "printing":
                    self.answer(job, "failed", f"not ready to start: still in {job.phase}")
                return
            if self.r.ms.job_open:
                self.answer(job, "failed", "the machine is running another job; confirm again when it is done")
                return  # still ready: a later job/start may start it
            job.phase = "printing"
            self._save(job)
        log.info("%s: job %s started by %s", self.r.id, job.job_id, msg.by)
        threading.Thread(target=self._start, args=(job,), name=f"{self.r.id}-print", daemon=True).start()

    def handle_withdraw(self, topic: str, payload: bytes) -> None:
        msg = self._decode(topic, payload)
        if not isinstance(msg, events.JobWithdraw):
            return
        with self.lock:
            job = self.job
            if job is None or job.job_id != msg.job_id:
                return  # nothing to drop (already gone): the server's state is reached anyway
            if job.phase == "printing":
                log.info("%s: withdraw of job %s ignored: it is printing (stop it at the machine)",
                         self.r.id, job.job_id)
                return
            if job.phase in ("download", "transfer"):
                self._cancel = msg.reason or "withdrawn"
                if self._task is not None:
                    self._task.cancel("withdrawn")
                return  # the worker stops, cleans up and answers
        self._forget(job)

        def drop() -> None:  # a print server's DELETE may take a while: not on the MQTT thread
            self._drop_remote(job)
            self.answer(job, "withdrawn", msg.reason)

        threading.Thread(target=drop, name=f"{self.r.id}-withdraw", daemon=True).start()

    # ================================================================================ offer -> ready
    def _prepare(self, job: Job) -> None:
        try:
            self._download(job)
            job.phase = "transfer"
            self._save(job)
            self._transfer(job)
            if self.r._stop.is_set():
                raise Stopped()
            if self._cancel:
                raise Withdrawn()
            with self.lock:
                job.phase = "ready"
                self._save(job)
            self.answer(job, "ready")
        except Stopped:
            pass
        except Failed as exc:
            if self.r._stop.is_set():
                return  # cut off by the stop, not failed: the next start reports it
            self._drop_remote(job)
            self._forget(job)
            self.answer(job, "failed", exc.reason)
        except Withdrawn:
            self._drop_remote(job)
            self._forget(job)
            self.answer(job, "withdrawn", self._cancel)
        except Exception as exc:  # never leave the machine's queue stuck on a bug
            log.exception("%s: job %s", self.r.id, job.job_id)
            self._forget(job)
            self.answer(job, "failed", f"bridge error: {type(exc).__name__}")

    def _download(self, job: Job) -> None:
        part = self._file(job).with_suffix(".part")
        digest, done = hashlib.sha256(), 0
        progress = Progress(self, job, "download")
        req = urllib.request.Request(job.file_url, headers={"Accept": "application/octet-stream"})
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.download_timeout) as resp, open(part, "wb") as out:
                length = resp.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > job.size:
                    raise Failed(f"download refused: the server sends {length} bytes, the offer said {job.size}")
                while True:
                    if self._cancel:
                        raise Withdrawn()
                    if self.r._stop.is_set():
                        raise Stopped()
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    done += len(chunk)
                    if done > job.size:
                        raise Failed(f"download stopped: the file is larger than the offered {job.size} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                    progress(done, job.size)
        except urllib.error.HTTPError as exc:
            raise Failed(f"download failed: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise Failed(f"download failed: {exc.reason}") from None
        except TimeoutError:
            raise Failed(f"download timed out (no data for {self.cfg.download_timeout:.0f} s)") from None
        except OSError as exc:
            raise Failed(f"download failed: {exc.strerror or exc}") from None
        if done != job.size:
            raise Failed(f"download incomplete: {done} of {job.size} bytes")
        if digest.hexdigest() != job.sha256:
            raise Failed("download corrupt: sha256 does not match the offer")
        os.replace(part, self._file(job))

    def _chunks(self, job: Job) -> Iterator[bytes]:
        with open(self._file(job), "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    def _transfer(self, job: Job) -> None:
        progress = Progress(self, job, "transfer")
        if job.transfer == "sd":
            job.remote = sd_name(job.job_id, job.name)
            task = PortTask(upload_stream(job.remote, self._chunks(job), job.size), "upload", file=job.remote,
                            on_progress=progress, silence_s=max(10.0, self.cfg.ack_timeout * 3),
                            closing=[f"M29 {job.remote}"])
            self._run_task(task)
        elif job.transfer == "stream":
            progress(job.size, job.size)  # the file stays in the spool; it is streamed on start
        elif job.transfer in ("octoprint", "moonraker"):
            job.remote = f"fablab-{hashlib.sha256(job.job_id.encode()).hexdigest()[:12]}.gcode"
            try:
                self._client().upload(self._chunks(job), job.size, job.remote, progress,
                                      cancelled=lambda: bool(self._cancel))
            except RemoteError as exc:
                raise Failed(f"upload to {job.transfer} failed: {exc.reason}") from None
        if self._cancel:
            raise Withdrawn()

    def _run_task(self, task: PortTask) -> None:
        with self.lock:
            self._task = task
        try:
            self.r.run_port_task(task)
        finally:
            with self.lock:
                self._task = None
        if self._cancel:
            raise Withdrawn()
        if task.error:
            raise Failed(f"transfer failed: {task.error}")

    def _client(self) -> OctoPrintClient | MoonrakerClient:
        if self.cfg.transfer == "octoprint":
            return OctoPrintClient(self.cfg.octoprint_url or "", self.cfg.octoprint_api_key or "")
        return MoonrakerClient(self.cfg.moonraker_url or "", self.cfg.moonraker_api_key)

    def _drop_remote(self, job: Job) -> None:
        """A withdrawn or failed job's file on the machine goes too (best effort)."""
        if not job.remote:
            return
        if job.transfer == "sd":
            with self.r.lock:
                self.r._commands.append(f"M30 {job.remote}")
        elif job.transfer in ("octoprint", "moonraker"):
            try:
                self._client().delete(job.remote)
            except RemoteError as exc:
                log.info("%s: could not delete %s: %s", self.r.id, job.remote, exc.reason)

    # ================================================================================ start -> end
    def _start(self, job: Job) -> None:
        self.r.job_extra = {"job_id": job.job_id}
        try:
            if job.transfer == "sd":
                with self.r.lock:
                    self.r._commands.extend(start_commands(job.remote or ""))
                self._await_running(job)
                self.answer(job, "started")
                self._watch_end(job)
                if not self.r._stop.is_set():
                    self._drop_remote(job)  # printed: the card keeps no queued files
            elif job.transfer == "stream":
                self._stream(job)
            else:
                client = self._client()
                client.start(job.remote or "")
                self.answer(job, "started")
                watch_print(client, self.r, job.remote or "", self.cfg.poll_interval, self.r._stop,
                            self.cfg.start_timeout)
                if not self.r._stop.is_set():
                    self._forget(job)
                    self._drop_remote(job)
        except Failed as exc:
            self.r.job_extra = {}
            self._forget(job)
            self.answer(job, "failed", exc.reason)
        except RemoteError as exc:
            self.r.job_extra = {}
            self._forget(job)
            self.answer(job, "failed", f"{job.transfer}: {exc.reason}")

    def _await_running(self, job: Job) -> None:
        deadline = time.monotonic() + self.cfg.start_timeout
        while not self.r.ms.job_open:
            if time.monotonic() > deadline or self.r._stop.is_set():
                raise Failed(f"the printer did not start {job.remote} within {self.cfg.start_timeout:.0f} s")
            time.sleep(0.05)

    def _watch_end(self, job: Job) -> None:
        while self.r.ms.job_open and not self.r._stop.is_set():
            time.sleep(0.2)
        if not self.r._stop.is_set():
            self._forget(job)

    def _stream(self, job: Job) -> None:
        lines = gcode_lines(self._chunks(job))
        stream: MarlinStream | GrblStream = (MarlinStream(lines, job.size) if self.cfg.driver == "marlin"
                                             else GrblStream(lines, job.size))
        task = PortTask(stream, "print", file=job.name, on_progress=Progress(self, job, "print"),
                        silence_s=max(60.0, self.cfg.ack_timeout * 3))

        def announce() -> None:  # "started" once the first line is on its way
            if task.begun.wait(self.cfg.start_timeout) and not task.finished.is_set():
                self.answer(job, "started")

        started = threading.Thread(target=announce, daemon=True)
        started.start()
        self.r.run_port_task(task)
        started.join(1)
        if self.r._stop.is_set():
            return  # cut off by the stop: the next start reports it (the state stays on disk)
        if task.error:
            self.r.job_extra = {}
            self._forget(job)
            if not task.begun.is_set():
                raise Failed(f"stream not started: {task.error}")
            self.answer(job, "failed", f"stream stopped: {task.error}")
            return
        # GRBL: the last ok comes before the motion ends; the job ends when the controller is idle
        deadline = time.monotonic() + 3 * self.cfg.poll_interval + 1
        while not self.r.ms.job_open and time.monotonic() < deadline:
            time.sleep(0.05)
        self._watch_end(job)
        self.r.job_extra = {}

    # ================================================================================ lifecycle
    def status(self) -> dict[str, Any] | None:
        job = self.job
        return {"job_id": job.job_id, "phase": job.phase} if job else None
