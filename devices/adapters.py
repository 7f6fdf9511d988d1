"""Printers already run by a print server: adapt its MQTT messages to codec observations, so a lab keeps
OctoPrint or Klipper/Moonraker and still gets fablab usage tracking.

- OctoPrint with the MQTT plugin publishes ``<base>/event/<Event>`` (JSON with ``_event``, ``name``, ...),
  ``<base>/progress/printing`` ({"progress": 0..100}) and ``<base>/temperature/<tool>`` ({"actual", "target"}).
  ``base`` defaults to ``octoPrint``.
- Moonraker with ``[mqtt]`` and ``status_objects`` publishes ``<instance>/klipper/status``
  ({"eventtime", "status": {"print_stats": {"state", "filename"}, "virtual_sdcard": {"progress"},
  "extruder": {"temperature", "target"}, "heater_bed": {...}}}) and ``<instance>/moonraker/status``
  ({"server": "online"|"offline"}).
Both are pure: fed (topic, payload), they return observations.
"""

from __future__ import annotations

import json
from typing import Any

from devices.observations import Fault, JobFinished, JobStarted, Observation, Reading, StateChanged


def _json(payload: bytes | str) -> dict[str, Any] | None:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class _PrinterState:
    def __init__(self) -> None:
        self.state = "idle"
        self.file: str | None = None
        self.online = True

    @property
    def in_job(self) -> bool:
        return self.state in ("printing", "paused")

    def set(self, state: str, out: list[Observation]) -> None:
        if state != self.state:
            out.append(StateChanged(state=state, previous=self.state))
            self.state = state

    def start(self, file: str | None, out: list[Observation]) -> None:
        if not self.in_job:
            self.file = file
            out.append(JobStarted(file=file))
        self.set("printing", out)

    def finish(self, reason: str, out: list[Observation], state: str = "idle") -> None:
        if self.in_job:
            out.append(JobFinished(reason=reason, file=self.file))
        self.set(state, out)


class OctoPrintAdapter(_PrinterState):
    def __init__(self, base: str = "octoPrint") -> None:
        super().__init__()
        self.base = base.rstrip("/")

    def topics(self) -> list[str]:
        return [f"{self.base}/event/#", f"{self.base}/progress/printing", f"{self.base}/temperature/#"]

    def feed(self, topic: str, payload: bytes | str) -> list[Observation]:
        out: list[Observation] = []
        if not topic.startswith(self.base + "/"):
            return out
        kind, _, rest = topic[len(self.base) + 1 :].partition("/")
        data = _json(payload)
        if data is None:
            return out
        if kind == "event":
            self._event(data.get("_event") or rest, data, out)
        elif kind == "progress" and rest == "printing":
            progress = _num(data.get("progress"))
            if progress is not None:
                out.append(Reading({"progress": round(progress / 100, 4)}))
        elif kind == "temperature":
            actual, target = _num(data.get("actual")), _num(data.get("target"))
            if actual is not None:
                reading = {"actual": actual} | ({"target": target} if target is not None else {})
                name = {"tool0": "hotend", "bed": "bed", "chamber": "chamber"}.get(rest, rest.replace("tool", "hotend"))
                out.append(Reading({"temps": {name: reading}}))
        return out

    def _event(self, event: str, data: dict[str, Any], out: list[Observation]) -> None:
        name = data.get("name") if isinstance(data.get("name"), str) else None
        if event == "PrintStarted":
            self.start(name, out)
        elif event == "PrintDone":
            self.finish("done", out)
        elif event == "PrintCancelled":
            self.finish("cancelled", out)
        elif event == "PrintFailed":
            self.finish(str(data.get("reason") or "failed"), out)
        elif event == "PrintPaused" and self.state == "printing":
            self.set("paused", out)
        elif event == "PrintResumed" and self.state == "paused":
            self.set("printing", out)
        elif event == "Error":
            out.append(Fault(reason="octoprint_error", detail=str(data.get("error", ""))))
            self.finish("error", out, state="error")
        elif event == "Disconnected":
            self.finish("lost", out, state="offline")
        elif event == "Connected" and self.state in ("offline", "error"):
            self.set("idle", out)


_MOONRAKER_STATES = {"standby": "idle", "printing": "printing", "paused": "paused", "complete": "idle",
                     "cancelled": "idle", "error": "error"}


class MoonrakerAdapter(_PrinterState):
    def __init__(self, instance: str) -> None:
        super().__init__()
        self.instance = instance.rstrip("/")

    def topics(self) -> list[str]:
        return [f"{self.instance}/klipper/status", f"{self.instance}/moonraker/status"]

    def feed(self, topic: str, payload: bytes | str) -> list[Observation]:
        out: list[Observation] = []
        data = _json(payload)
        if data is None:
            return out
        if topic == f"{self.instance}/moonraker/status":
            if data.get("server") == "offline":
                self.finish("lost", out, state="offline")
            elif data.get("server") == "online" and self.state == "offline":
                self.set("idle", out)
            return out
        if topic != f"{self.instance}/klipper/status" or not isinstance(data.get("status"), dict):
            return out
        status = data["status"]
        stats = status.get("print_stats") if isinstance(status.get("print_stats"), dict) else {}
        if isinstance(stats.get("filename"), str) and stats["filename"]:
            self.file = stats["filename"]
        state = stats.get("state")
        if state in _MOONRAKER_STATES:
            target = _MOONRAKER_STATES[state]
            if target == "printing" and not self.in_job:
                self.start(self.file, out)
            elif target in ("idle", "error") and self.in_job:
                if target == "error":
                    out.append(Fault(reason="klipper_error", detail=str(stats.get("message", ""))))
                self.finish({"complete": "done", "cancelled": "cancelled"}.get(state, state), out, state=target)
            else:
                self.set(target, out)
        sd = status.get("virtual_sdcard")
        if isinstance(sd, dict) and _num(sd.get("progress")) is not None:
            out.append(Reading({"progress": round(float(sd["progress"]), 4)}))
        temps = {}
        for key, name in (("extruder", "hotend"), ("heater_bed", "bed")):
            heater = status.get(key)
            if isinstance(heater, dict) and _num(heater.get("temperature")) is not None:
                temps[name] = {"actual": float(heater["temperature"])}
                if _num(heater.get("target")) is not None:
                    temps[name]["target"] = float(heater["target"])
        if temps:
            out.append(Reading({"temps": temps}))
        return out
