"""Uploading a G-code file to a Marlin printer's SD card over serial: ``M28 <8.3 name>``, the file's lines
numbered and checksummed (one in flight, ``Resend:`` answered), ``M29``; the print starts later with
``M23 <name>`` and ``M24``. Pure: ``upload_stream`` returns a ``MarlinStream`` the serial loop drives.

Marlin writes every line between ``M28`` and ``M29`` to the file instead of running it, so nothing else
(the bridge's own ``M105``/``M27`` polling, a pass-through sender) may reach the printer meanwhile.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

from devices.gcode_stream import MarlinStream, gcode_lines


def sd_name(job_id: str, name: str) -> str:
    """An 8.3 name Marlin's FAT code accepts, e.g. ``BENC3F2A.GCO``: up to four letters of the file's name
    and four hex digits of the job id (two jobs with the same file name do not overwrite each other)."""
    stem = re.sub(r"[^A-Z0-9]", "", name.rsplit(".", 1)[0].upper())[:4] or "JOB"
    tag = hashlib.sha256(job_id.encode()).hexdigest()[: 8 - len(stem)].upper()
    return f"{stem}{tag}.GCO"


def upload_lines(name83: str, chunks: Iterable[bytes]) -> Iterator[tuple[str, int]]:
    yield f"M28 {name83}", 0
    yield from gcode_lines(chunks)
    yield f"M29 {name83}", 0


def upload_stream(name83: str, chunks: Iterable[bytes], size: int) -> MarlinStream:
    return MarlinStream(upload_lines(name83, chunks), size)


def start_commands(name83: str) -> list[str]:
    """Select the uploaded file and print it (sent only on the member's confirmation at the machine)."""
    return [f"M23 {name83}", "M24"]
