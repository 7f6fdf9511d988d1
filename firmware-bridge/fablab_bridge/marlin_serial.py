"""The serial loop of a Marlin printer: the bridge's polling and, with ``passthrough``, a G-code sender's
stream on one line (``devices.marlin_flow`` keeps numbering, acknowledgements and replies apart)."""

from __future__ import annotations

import logging
import os
import select
import time
from typing import TYPE_CHECKING

import serial

from devices.lines import LineBuffer
from devices.marlin import MarlinCodec
from devices.marlin_flow import MarlinFlow
from devices.observations import Ack, Busy, Firmware, JobFinished, JobStarted, Observation, Reading, Resend, Reset
from devices.passthrough import PtyPort
from fablab_bridge.port_task import PortTask

if TYPE_CHECKING:
    from fablab_bridge.machine import MachineRunner

log = logging.getLogger(__name__)


def _read(fd: int) -> bytes:
    data = os.read(fd, 4096)
    if not data:
        raise serial.SerialException("device disconnected")
    return data


def _write(fd: int, data: bytes) -> None:
    """All of ``data`` to the printer (os.write on the port's fd: pyserial's write costs more per line)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [], 2.0)


def run_marlin(r: MachineRunner, ser: serial.Serial) -> None:
    codec, flow, lines = MarlinCodec(), MarlinFlow(), LineBuffer()
    flow.sender_last = r.sender_line  # the sender did not go away with the printer's port
    r._codec = codec
    try:
        _loop(r, ser, codec, flow, lines)
    finally:
        r.sender_line = flow.sender_last


def _loop(r: MachineRunner, ser: serial.Serial, codec: MarlinCodec, flow: MarlinFlow, lines: LineBuffer) -> None:
    cfg = r.cfg
    poll = cfg.poll_interval
    sender = r.passthrough
    sender_lines = LineBuffer()
    if sender is None or not sender.connected():
        flow.sender_last = 0  # whoever connects next starts its own numbering
    fd = ser.fileno()
    # a sender may turn auto-reports on or off for itself: with one, the bridge polls instead
    autoreport_ok = sender is None and poll >= 1
    state = {"autoreport": False}
    error_since: float | None = None

    def init(now: float) -> None:
        flow.bridge_queue.clear()
        state["autoreport"] = False
        _write(fd, flow.reset(now).encode())
        flow.bridge_queue.append("M115")

    def from_printer(line: str, now: float, to_sender: list[str]) -> None:
        out, write = flow.from_printer(line, now)
        to_sender += out
        for raw in write:
            _write(fd, raw.encode())
        rest: list[Observation] = []
        for o in codec.feed(line):
            if isinstance(o, Reset):
                log.info("%s: printer reset", r.id)
                init(now)
            elif isinstance(o, Busy):
                flow.busy(now)
            elif not isinstance(o, Ack | Resend):
                if isinstance(o, Firmware) and autoreport_ok and o.caps.get("AUTOREPORT_TEMP") \
                        and o.caps.get("AUTOREPORT_SD_STATUS"):
                    state["autoreport"] = True
                    flow.bridge_queue.extend((f"M155 S{round(poll)}", f"M27 S{round(poll)}"))
                rest.append(o)
        r.observe(rest)

    # the board resets when the port opens: wait for its banner before talking to it
    deadline = time.monotonic() + cfg.boot_wait
    booted = False
    while not booted and time.monotonic() < deadline and not r._stop.is_set():
        ready, _, _ = select.select([fd], [], [], 0.05)
        for line in lines.feed(_read(fd) if ready else b""):
            obs = codec.feed(line)
            booted = booted or any(isinstance(o, Reset) for o in obs)
            r.observe([o for o in obs if not isinstance(o, Reset)])
    with r.lock:
        r.state = codec.state
    r._set_online(True)
    init(time.monotonic())
    next_poll = time.monotonic()
    had_sender = False
    while not r._stop.is_set():
        task = r.port_task
        if task is not None and not flow.inflight:  # the port is free: the task has it to itself
            _run_task(r, fd, lines, codec, task)
            init(time.monotonic())
            next_poll = time.monotonic()
            continue
        watch = [fd, *sender.fds()] if sender else [fd]
        ready, _, _ = select.select(watch, [], [], 0.02)
        now = time.monotonic()
        to_sender: list[str] = []
        if fd in ready:
            for line in lines.feed(_read(fd)):
                from_printer(line, now, to_sender)
        if sender is not None:
            has_sender = len(watch) > 1 if isinstance(sender, PtyPort) else sender.connected()
            if had_sender and not has_sender:
                flow.sender_gone()
                sender_lines.clear()
                r.observe(codec.host_stopped("stopped"))  # the host left mid-print
            had_sender = has_sender
            data = sender.service(ready)
            if data:
                streamed: list[Observation] = []
                for line in sender_lines.feed(data):
                    queued = len(flow.sender_queue)
                    reply = flow.from_sender(line)
                    if reply:
                        to_sender.append(reply.rstrip("\n"))
                    elif len(flow.sender_queue) > queued:
                        streamed += codec.host_line(flow.sender_queue[-1], now)
                r.observe(streamed)
            if codec.host_job:
                r.observe(codec.host_idle(now, cfg.stream_idle_s))
        with r.lock:
            while r._commands:
                flow.bridge_queue.append(r._commands.popleft())
        if not state["autoreport"] and now >= next_poll:
            next_poll = now + poll
            for cmd in ("M105", "M27"):
                if cmd not in flow.bridge_queue:
                    flow.bridge_queue.append(cmd)
        flow.expire(now, cfg.ack_timeout)
        if codec.pending_error is None:
            error_since = None
        elif error_since is None:
            error_since = now
        elif now - error_since > cfg.ack_timeout:  # an Error: nothing followed: the firmware stopped
            r.observe(codec.expire_error())
            to_sender += flow.flush()
        for raw in flow.next_lines(now) if r.port_task is None else []:  # a task waits for the port
            _write(fd, raw.encode())
        if to_sender and had_sender and sender is not None:
            sender.write(("\n".join(to_sender) + "\n").encode(), timeout=0.05)


def _run_task(r: MachineRunner, fd: int, lines: LineBuffer, codec: MarlinCodec, task: PortTask) -> None:
    """An SD upload or a streamed print, alone on the port; a print's start and end are job events."""
    poll = r.cfg.poll_interval
    now = time.monotonic()
    next_poll = now + poll
    printing = task.kind == "print"
    lost = False
    try:
        for raw in task.begin(now):
            _write(fd, raw.encode())
        if printing:
            r.observe([JobStarted(file=task.file)])
        while not r._stop.is_set() and not task.done:
            ready, _, _ = select.select([fd], [], [], 0.02)
            now = time.monotonic()
            if ready:
                for line in lines.feed(_read(fd)):
                    for raw in task.feed(line, now):
                        _write(fd, raw.encode())
                    r.observe([o for o in codec.feed(line) if not isinstance(o, Ack | Resend | Busy | Reset)])
            if printing and now >= next_poll:
                next_poll = now + poll
                task.inject("M105")
                s = task.stream
                r.observe([Reading({"progress": round(min(s.done_bytes, s.total) / max(1, s.total), 4)})])
            for raw in task.next_lines(now):
                _write(fd, raw.encode())
    except (serial.SerialException, OSError):
        lost = True  # the job ends "lost" with the port (MachineRunner._port_lost)
        task.end("the serial port was lost")
        raise
    finally:
        r.port_task = None
        if printing and not lost:
            s = task.stream
            reason = ("stopped" if not s.finished else "done" if not s.failed
                      else "cancelled" if s.cancelled else "error")
            r.observe([JobFinished(reason=reason, file=task.file)])
        task.end("the bridge stopped" if r._stop.is_set() and not task.done else None)
