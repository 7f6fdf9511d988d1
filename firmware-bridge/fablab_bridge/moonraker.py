"""Moonraker's (Klipper's) HTTP API for queued prints: ``POST /server/files/upload`` (root gcodes, not
printed), ``POST /printer/print/start?filename=``, and ``/printer/objects/query?print_stats&virtual_sdcard``
(with the heaters) for ``octoprint.watch_print``.

UNTESTED against a real Moonraker: it is not on PyPI and needs Klipper, so no real server can run in this
project's tests, and a fake one would only repeat this module's own assumptions. Built from Moonraker's
API documentation; try it on a real printer before relying on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from fablab_bridge.octoprint import RemoteError, RemoteStatus, http_json, multipart

_STATES = {"printing": "printing", "paused": "paused", "error": "error", "standby": "idle",
           "complete": "idle", "cancelled": "idle"}


class MoonrakerClient:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"X-Api-Key": api_key} if api_key else {}
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"MoonrakerClient({self.url!r})"

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        return http_json(method, self.url + path, headers=self._headers, timeout=self.timeout,
                         what="Moonraker", **kw)

    def upload(self, chunks: Iterable[bytes], size: int, name: str, progress: Callable[[int, int], None],
               cancelled: Callable[[], bool]) -> None:
        body, length, ctype = multipart(chunks, size, name, {"root": "gcodes", "print": "false"},
                                        progress, cancelled)
        http_json("POST", self.url + "/server/files/upload", headers=self._headers | {"Content-Type": ctype},
                  data=body, length=length, timeout=max(self.timeout, 60.0), what="Moonraker")

    def start(self, name: str) -> None:
        self._call("POST", f"/printer/print/start?filename={quote(name)}")

    def delete(self, name: str) -> None:
        try:
            self._call("DELETE", f"/server/files/gcodes/{quote(name)}")
        except RemoteError as exc:
            if exc.status != 404:
                raise

    def poll(self) -> RemoteStatus:
        answer = self._call("GET", "/printer/objects/query?print_stats&virtual_sdcard&extruder&heater_bed") or {}
        status = (answer.get("result") or {}).get("status") or {}
        stats = status.get("print_stats") or {}
        raw_state = str(stats.get("state") or "")
        progress = (status.get("virtual_sdcard") or {}).get("progress")
        if raw_state == "complete":
            progress = 1.0
        temps: dict[str, dict[str, float]] = {}
        for key, sensor in (("extruder", "hotend"), ("heater_bed", "bed")):
            heater = status.get(key) or {}
            if isinstance(heater.get("temperature"), int | float):
                temps[sensor] = {"actual": float(heater["temperature"])}
                if isinstance(heater.get("target"), int | float):
                    temps[sensor]["target"] = float(heater["target"])
        return RemoteStatus(state=_STATES.get(raw_state, "offline"), file=stats.get("filename") or None,
                            progress=round(float(progress), 4) if isinstance(progress, int | float) else None,
                            temps=temps)
