"""OctoPrint's REST API for queued prints (stdlib urllib; the key goes in ``X-Api-Key``, never in a log).

Upload to local storage without selecting it (``POST /api/files/local``, ``select=false``); on the member's
confirmation at the machine select and print it (``POST /api/files/local/<name>`` with
``{"command": "select", "print": true}``); then ``watch_print`` polls ``/api/job`` and ``/api/printer``
and turns what they say into the machine's observations (job_started, progress, temperatures,
job_finished).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from devices.observations import JobFinished, JobStarted, Observation, Reading, StateChanged

if TYPE_CHECKING:
    from fablab_bridge.machine import MachineRunner

log = logging.getLogger(__name__)


class RemoteError(Exception):
    """A print server refused or could not be reached; ``reason`` is safe to show (no key in it)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass
class RemoteStatus:
    state: str  # contract state: idle, printing, paused, error, offline
    file: str | None = None
    progress: float | None = None  # 0..1
    temps: dict[str, dict[str, float]] = field(default_factory=dict)


class PrintServer(Protocol):
    def upload(self, chunks: Iterable[bytes], size: int, name: str, progress: Callable[[int, int], None],
               cancelled: Callable[[], bool]) -> None: ...
    def start(self, name: str) -> None: ...
    def delete(self, name: str) -> None: ...
    def poll(self) -> RemoteStatus: ...


def http_json(method: str, url: str, *, headers: dict[str, str], body: Any = None, data: Any = None,
              length: int | None = None, timeout: float = 10.0, what: str = "print server") -> Any:
    """One request -> its JSON (None for an empty body); RemoteError with status and the server's message."""
    hdrs = dict(headers)
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    if length is not None:
        hdrs["Content-Length"] = str(length)
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(500).decode("utf-8", "replace").strip()
        try:
            detail = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            pass
        raise RemoteError(f"{what} answered HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else ""),
                          exc.code) from None
    except urllib.error.URLError as exc:
        raise RemoteError(f"{what} unreachable: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise RemoteError(f"{what} unreachable: {exc}") from None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise RemoteError(f"{what} sent something that is not JSON") from None


def multipart(chunks: Iterable[bytes], size: int, name: str, fields: dict[str, str],
              progress: Callable[[int, int], None], cancelled: Callable[[], bool],
              file_field: str = "file") -> tuple[Iterator[bytes], int, str]:
    """A streamed multipart/form-data body (the file is never held in memory): (body, length, type)."""
    boundary = uuid.uuid4().hex
    head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                   for k, v in fields.items())
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{name}"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n")
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head.encode()
        done = 0
        for chunk in chunks:
            if cancelled():
                raise RemoteError("withdrawn")
            done += len(chunk)
            yield chunk
            progress(min(done, size), size)
        yield tail

    return body(), len(head.encode()) + size + len(tail), f"multipart/form-data; boundary={boundary}"


class OctoPrintClient:
    def __init__(self, url: str, api_key: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"X-Api-Key": api_key}
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"OctoPrintClient({self.url!r})"  # never the key

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        return http_json(method, self.url + path, headers=self._headers, timeout=self.timeout,
                         what="OctoPrint", **kw)

    def version(self) -> dict[str, Any]:
        return self._call("GET", "/api/version")

    def upload(self, chunks: Iterable[bytes], size: int, name: str, progress: Callable[[int, int], None],
               cancelled: Callable[[], bool]) -> None:
        body, length, ctype = multipart(chunks, size, name, {"select": "false", "print": "false"},
                                        progress, cancelled)
        http_json("POST", self.url + "/api/files/local", headers=self._headers | {"Content-Type": ctype},
                  data=body, length=length, timeout=max(self.timeout, 60.0), what="OctoPrint")

    def start(self, name: str) -> None:
        self._call("POST", f"/api/files/local/{quote(name)}", body={"command": "select", "print": True})

    def delete(self, name: str) -> None:
        try:
            self._call("DELETE", f"/api/files/local/{quote(name)}")
        except RemoteError as exc:
            if exc.status != 404:
                raise

    def poll(self) -> RemoteStatus:
        job = self._call("GET", "/api/job") or {}
        text = str(job.get("state") or "")
        state = ("printing" if text.startswith(("Printing", "Starting", "Resuming", "Finishing", "Cancelling"))
                 else "paused" if text.startswith(("Paused", "Pausing"))
                 else "error" if text.startswith("Error")
                 else "offline" if text.startswith(("Offline", "Closed", "Connecting", "Opening", "Detecting"))
                 else "idle")
        file = ((job.get("job") or {}).get("file") or {}).get("name")
        completion = (job.get("progress") or {}).get("completion")
        progress = round(min(100.0, max(0.0, float(completion))) / 100, 4) if completion is not None else None
        temps: dict[str, dict[str, float]] = {}
        if state != "offline":
            try:
                printer = self._call("GET", "/api/printer?exclude=sd,state") or {}
            except RemoteError as exc:
                if exc.status != 409:  # 409: not operational, nothing to read
                    raise
                printer = {}
            for key, value in (printer.get("temperature") or {}).items():
                if isinstance(value, dict) and isinstance(value.get("actual"), int | float):
                    sensor = "hotend" if key == "tool0" else key
                    temps[sensor] = {"actual": float(value["actual"])}
                    if isinstance(value.get("target"), int | float):
                        temps[sensor]["target"] = float(value["target"])
        return RemoteStatus(state=state, file=file, progress=progress, temps=temps)


def watch_print(client: PrintServer, runner: MachineRunner, name: str, interval: float,
                stop: threading.Event, start_timeout: float = 60.0) -> str:
    """Poll until the print of ``name`` has run and ended; observations go to ``runner``. Returns the
    job_finished reason (done, cancelled, error, lost)."""
    started = False
    deadline = time.monotonic() + start_timeout
    failures = 0
    while not stop.is_set():
        try:
            st = client.poll()
            failures = 0
        except RemoteError as exc:
            failures += 1
            if failures >= 5:  # the server is gone: the job ends now, at the time of loss
                runner.observe([JobFinished(reason="lost", file=name)])
                log.warning("%s: print server lost: %s", runner.id, exc.reason)
                return "lost"
            stop.wait(interval)
            continue
        obs: list[Observation] = []
        if st.temps:
            obs.append(Reading({"temps": st.temps}))
        ours = st.file == name
        if not started:
            if ours and st.state in ("printing", "paused"):
                started = True
                obs += [JobStarted(file=name), StateChanged(state=st.state, previous=runner.state)]
            elif time.monotonic() > deadline:
                raise RemoteError(f"the print of {name} did not start within {start_timeout:.0f} s "
                                  f"(state {st.state})")
        else:
            if st.progress is not None and ours:
                obs.append(Reading({"progress": st.progress}))
            if st.state != runner.state:
                obs.append(StateChanged(state=st.state, previous=runner.state))
            if st.state in ("idle", "error", "offline") or not ours:
                done = st.state == "idle" and ours and (st.progress or 0) >= 0.999
                reason = "done" if done else "error" if st.state == "error" else \
                    "lost" if st.state == "offline" else "cancelled"
                obs.append(JobFinished(reason=reason, file=name))
                runner.observe(obs)
                return reason
        runner.observe(obs)
        stop.wait(interval)
    return "stopped"
