"""Smart plugs (Tasmota, Shelly Gen2) as a usage sensor and a lock.

Machines without a data port (laser cutters with their own controller, saws, kilns) are in use while
their power draw stays above a threshold for a minimum time; they stop being in use once it has
stayed below for a minimum time (hysteresis, so a pause between cuts is not a new job). Switching
the plug off is the lock. Parsing and detection are pure; the bridge does the MQTT I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from devices.observations import JobFinished, JobStarted, Observation, Reading, StateChanged


@dataclass(frozen=True)
class PlugReading:
    power_w: float | None = None
    energy_total_wh: float | None = None  # the plug's own counter, if reported
    relay_on: bool | None = None


def _json(payload: bytes | str) -> dict[str, Any] | None:
    """The payload's JSON object (its keys are strings), or None for anything else."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def tasmota_topics(device: str) -> list[str]:
    return [f"tele/{device}/SENSOR", f"stat/{device}/POWER"]


def parse_tasmota(topic: str, payload: bytes | str) -> PlugReading | None:
    """``tele/<t>/SENSOR`` {"ENERGY": {"Power": W, "Total": kWh}} and ``stat/<t>/POWER`` ON/OFF."""
    if topic.endswith("/POWER"):
        text = payload.decode(errors="replace") if isinstance(payload, bytes) else payload
        text = text.strip().upper()
        return PlugReading(relay_on=text == "ON") if text in ("ON", "OFF") else None
    data = _json(payload)
    if data is None or not isinstance(data.get("ENERGY"), dict):
        return None
    energy = data["ENERGY"]
    total = _num(energy.get("Total"))
    return PlugReading(power_w=_num(energy.get("Power")), energy_total_wh=None if total is None else total * 1000)


def tasmota_switch(device: str, on: bool) -> tuple[str, bytes]:
    return f"cmnd/{device}/POWER", b"ON" if on else b"OFF"


def shelly_topics(device: str) -> list[str]:
    return [f"{device}/status/switch:0"]


def parse_shelly(topic: str, payload: bytes | str) -> PlugReading | None:
    """Shelly Gen2 ``<id>/status/switch:0`` {"output": bool, "apower": W, "aenergy": {"total": Wh}}."""
    data = _json(payload)
    if data is None:
        return None
    aenergy = data.get("aenergy")
    total = _num(aenergy.get("total")) if isinstance(aenergy, dict) else None
    output = data.get("output")
    return PlugReading(
        power_w=_num(data.get("apower")),
        energy_total_wh=total,
        relay_on=output if isinstance(output, bool) else None,
    )


def shelly_switch(device: str, on: bool) -> tuple[str, bytes]:
    return f"{device}/command/switch:0", b"on" if on else b"off"


class PowerUseDetector:
    """Hysteresis over power readings. ``feed(power_w, now)`` returns observations.

    In use: power >= ``threshold_w`` continuously for ``min_on_s``; the job starts at the first reading
    above. Ended: power < threshold continuously for ``min_off_s``. Energy is integrated from the
    readings (trapezoid rule) over the whole use, including the confirmation times.
    """

    def __init__(self, threshold_w: float, min_on_s: float = 10.0, min_off_s: float = 60.0) -> None:
        self.threshold_w = threshold_w
        self.min_on_s = min_on_s
        self.min_off_s = min_off_s
        self.in_use = False
        self._above_since: float | None = None
        self._below_since: float | None = None
        self._last: tuple[float, float] | None = None  # (time, power)
        self._energy_ws = 0.0  # since the first reading above threshold
        self.energy_wh_total = 0.0  # over all readings, for telemetry

    def feed(self, power_w: float, now: float) -> list[Observation]:
        out: list[Observation] = []
        if self._last is not None and now > self._last[0]:
            dt = now - self._last[0]
            ws = (self._last[1] + power_w) / 2 * dt
            self.energy_wh_total += ws / 3600
            if self._above_since is not None or self.in_use:
                self._energy_ws += ws
        self._last = (now, power_w)
        above = power_w >= self.threshold_w
        if not self.in_use:
            if above:
                if self._above_since is None:
                    self._above_since = now
                    self._energy_ws = 0.0
                if now - self._above_since >= self.min_on_s:
                    self.in_use = True
                    self._below_since = None
                    out.append(JobStarted())
                    out.append(StateChanged(state="busy", previous="idle"))
            else:
                self._above_since = None
        else:
            if above:
                self._below_since = None
            else:
                if self._below_since is None:
                    self._below_since = now
                if now - self._below_since >= self.min_off_s:
                    self.in_use = False
                    self._above_since = None
                    out.append(JobFinished(reason="done", energy_wh=round(self._energy_ws / 3600, 3)))
                    out.append(StateChanged(state="idle", previous="busy"))
        out.append(Reading({"power_w": power_w}))
        return out
