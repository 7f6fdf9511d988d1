"""What the protocol codecs report: small value objects, independent of MQTT and of any transport.

A codec is fed lines (or bytes) and returns a list of these; the bridge turns them into contract
messages. States use the contract's vocabulary (``devices.events.MACHINE_STATES``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reset:
    """The controller (re)booted: line numbers and any job state start over."""

    banner: str = ""


@dataclass(frozen=True)
class StateChanged:
    state: str  # contract state: idle, busy, printing, paused, alarm, error
    previous: str


@dataclass(frozen=True)
class JobStarted:
    file: str | None = None


@dataclass(frozen=True)
class JobFinished:
    reason: str  # done, cancelled, stopped, reset, alarm, error
    file: str | None = None
    energy_wh: float | None = None


@dataclass(frozen=True)
class Fault:
    reason: str
    detail: str = ""
    fatal: bool = True  # fatal: the machine is halted (error/alarm state)


@dataclass(frozen=True)
class Reading:
    """Telemetry readings, e.g. ``{"temps": {...}}``, ``{"progress": 0.4}``, ``{"power_w": 12.0}``."""

    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Firmware:
    name: str
    caps: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Ack:
    """The controller accepted a command (``ok``)."""


@dataclass(frozen=True)
class Busy:
    """The controller is alive but still working on a command (``echo:busy``): not an ack."""


@dataclass(frozen=True)
class Resend:
    line: int


@dataclass(frozen=True)
class Rejected:
    """The controller refused one command line (GRBL ``error:N``): a reply to whoever sent the line, not a
    machine fault. The line went from the operator's G-code sender, so it is job detail at most."""

    code: str


Observation = (
    Reset | StateChanged | JobStarted | JobFinished | Fault | Reading | Firmware | Ack | Busy | Resend | Rejected
)
