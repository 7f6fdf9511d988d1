"""A Marlin 2.1 printer on a pty: banner, ok, M105/M155 temperatures that rise while heating, SD printing
with M27 / ``M27 S`` progress over a file's length, pause/resume/abort, kill errors on demand, and
line-number/checksum checking with (optionally random) ``Resend:`` requests, and an SD card: ``M28``/``M29``
write a file from the host's lines (kept in ``sd_content``), ``M20`` lists, ``M23``/``M24`` print it,
``M30`` deletes.

    sim = MarlinSimulator(link="/tmp/prusa-sim", files={"benchy.gcode": 40_000}, print_rate=20_000)
    sim.start()                 # serial port at sim.path
    sim.start_print("benchy.gcode")   # as if started from the printer's screen
    sim.inject_error()          # thermal runaway -> "Error:...", halted until replug/reboot
    sim.unplug(); sim.replug()

Like real firmwares it can word its checksum error differently (``checksum_error=" Missing checksum"``),
refuse unnumbered lines (``checksum_strict``), take time per command (``ack_delay``, ``baud``: each ok
waits for the line's time on the UART) and count lines that arrive before the previous ok (``overruns``).
"""

from __future__ import annotations

from devices.marlin import parse_numbered
from devices.simulators.base import PtySimulator

FIRMWARE_LINE = (
    "FIRMWARE_NAME:Marlin 2.1.2.1 (Jun 21 2024 10:00:00) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
    "PROTOCOL_VERSION:1.0 MACHINE_TYPE:Simulated Printer EXTRUDER_COUNT:1 UUID:00000000-0000-0000-0000-000000000000"
)
CAPS = {
    "SERIAL_XON_XOFF": False,
    "BINARY_FILE_TRANSFER": False,
    "EEPROM": True,
    "AUTOREPORT_TEMP": True,
    "AUTOREPORT_SD_STATUS": True,
    "PROGRESS": True,
    "PRINT_JOB": True,
    "HOST_ACTION_COMMANDS": True,
    "EMERGENCY_PARSER": True,
}


class MarlinSimulator(PtySimulator):
    def __init__(
        self,
        link: str | None = None,
        *,
        files: dict[str, int] | None = None,
        print_rate: float = 2000.0,  # bytes of G-code per second
        heat_rate: float = 1.5,  # fraction of the gap to the target closed per second
        print_temps: tuple[float, float] = (210.0, 60.0),
        resend_rate: float = 0.0,  # probability that a numbered line is "corrupted"
        ambient: float = 21.0,
        tick: float = 0.02,
        reset_on_open: bool = True,  # 8-bit boards reboot on DTR; native-USB boards keep printing
        checksum_error: str = "checksum mismatch",  # firmwares word it differently ("Missing checksum")
        checksum_strict: bool = False,  # refuse lines without N and checksum (asks for them again)
        ack_delay: float = 0.0,  # seconds a command takes before its ok (a printer's own ack rate)
        baud: int | None = None,  # also delay each ok by the line's time on a UART at this rate
        seed: int | None = None,
    ) -> None:
        super().__init__(link, tick=tick, seed=seed)
        self.reset_on_open = reset_on_open
        self.checksum_error = checksum_error
        self.checksum_strict = checksum_strict
        self.ack_delay = ack_delay
        self.baud = baud
        self._line_delay = 0.0
        self.commands: list[tuple[int | None, str]] = []  # (line number, command) executed, in order
        self.overruns = 0  # lines that arrived while a command's ok was still due (a host ahead of acks)
        self._due_ok: list[tuple[float, str]] = []
        self._now = 0.0
        self.files = dict(files or {"benchy.gcode": 20_000})
        self.print_rate = print_rate
        self.heat_rate = heat_rate
        self.print_temps = print_temps
        self.resend_rate = resend_rate
        self.ambient = ambient
        self.hotend = [ambient, 0.0]  # actual, target
        self.bed = [ambient, 0.0]
        self.selected: str | None = None
        self.printing = False
        self.paused = False
        self.sd_pos = 0
        self.killed = False
        self.psu_on = True
        self.display = ""
        self.last_line = 0
        self.resends_requested = 0
        self.sd_content: dict[str, bytes] = {}  # files written with M28/M29 (their lines as received)
        self.writing: str | None = None  # M28: lines go to this file instead of running
        self._write_buf: list[str] = []
        self.temp_interval = 0.0
        self.sd_interval = 0.0
        self._next_temp = 0.0
        self._next_sd = 0.0
        self._next_busy = 0.0

    # -------------------------------------------------------------------------------- control (tests)
    @property
    def progress(self) -> float:
        size = self.files.get(self.selected or "", 0)
        return self.sd_pos / size if size else 0.0

    def start_print(self, name: str | None = None) -> None:
        """Start an SD print as if from the printer's own screen (the host sees it only via M27)."""
        with self.lock:
            name = name or next(iter(self.files))
            self.selected, self.sd_pos, self.printing, self.paused = name, 0, True, False
            self.hotend[1], self.bed[1] = self.print_temps

    def pause(self) -> None:
        with self.lock:
            if self.printing and not self.paused:
                self.paused = True
                self.send("//action:paused\n")

    def resume(self) -> None:
        with self.lock:
            if self.printing and self.paused:
                self.paused = False
                self.send("//action:resumed\n")

    def cancel(self) -> None:
        with self.lock:
            if self.printing:
                self._end_print()
                self.send("//action:cancel\n")

    def finish(self) -> None:
        """Jump to the end of the file: 'Done printing file' now."""
        with self.lock:
            if self.printing:
                self.sd_pos = self.files[self.selected or ""]
                self._end_print()
                self.send("Done printing file\n")

    def inject_error(self, message: str = "Thermal Runaway, system stopped! Heater_ID: 0",
                     halt: str = "Error:Printer halted. kill() called!") -> None:
        """A fatal firmware error: the printer halts and stays silent until rebooted (replug/reboot)."""
        with self.lock:
            self.send(f"Error:{message}\n{halt}\n")
            self._end_print()
            self.killed = True

    def reboot(self) -> None:
        with self.lock:
            self._boot()

    # -------------------------------------------------------------------------------- firmware
    def _end_print(self) -> None:
        self.printing = self.paused = False
        self.hotend[1] = self.bed[1] = 0.0

    def _temps(self) -> str:
        (t, tt), (b, bt) = self.hotend, self.bed
        return f"T:{t:.2f} /{tt:.2f} B:{b:.2f} /{bt:.2f} @:0 B@:0"

    def _sd(self) -> str:
        if self.printing:
            return f"SD printing byte {self.sd_pos}/{self.files[self.selected or '']}"
        return "Not SD printing"

    def on_connect(self, now: float) -> None:
        if self.reset_on_open:
            self._boot()

    def _boot(self) -> None:
        self.killed = False
        self._due_ok.clear()
        self.printing = self.paused = False
        self.hotend[1] = self.bed[1] = 0.0
        self.last_line = 0
        self.temp_interval = self.sd_interval = 0.0
        self.writing, self._write_buf = None, []  # an unfinished M28 file is lost with the reboot
        self.send("start\necho:Marlin 2.1.2.1\n\necho: Last Updated: 2024-06-21 | Author: (sim)\n")
        self.send("echo:Compiled: Jun 21 2024\necho: Free Memory: 2813  PlannerBufferBytes: 1232\n")

    def on_line(self, line: str, now: float) -> None:
        if self.killed:
            return  # halted: Marlin no longer processes commands
        self._now = now
        if self.baud:  # start bit, 8 data bits, stop bit per byte, and the newline
            self._line_delay = (len(line) + 1) * 10 / self.baud
        if self._due_ok and line.strip():
            self.overruns += 1
        n, cmd, ok = parse_numbered(line)
        if n is None and self.checksum_strict and cmd:
            self._resend("No Checksum with line number")
            return
        if n is not None:
            if cmd.upper().startswith("M110"):
                self.last_line = n
                self.send("ok\n")
                return
            if not ok:
                self._resend(self.checksum_error)
                return
            if n != self.last_line + 1:
                self.send(f"Error:Line Number is not Last Line Number+1, Last Line: {self.last_line}\n")
                self.send(f"Resend: {self.last_line + 1}\nok\n")
                self.resends_requested += 1
                return
            if self.resend_rate and self.rng.random() < self.resend_rate:
                self._resend(self.checksum_error)
                return
            self.last_line = n
        if not cmd:
            self.send("ok\n")
            return
        if self.writing is not None and not cmd.upper().startswith("M29"):
            self._write_buf.append(cmd)  # M28 mode: written to the file, not run (as Marlin does)
            self._ok()
            return
        self.commands.append((n, cmd))
        self._execute(cmd, now)

    def _ok(self, text: str = "ok") -> None:
        if self.ack_delay or self._line_delay:
            self._due_ok.append((self._now + self.ack_delay + self._line_delay, text))
        else:
            self.send(text + "\n")

    def _resend(self, why: str) -> None:
        self.resends_requested += 1
        self.send(f"Error:{why}, Last Line: {self.last_line}\nResend: {self.last_line + 1}\nok\n")

    def _execute(self, cmd: str, now: float) -> None:
        word, _, rest = cmd.partition(" ")
        word = word.upper()
        params = {p[0].upper(): p[1:] for p in rest.split() if p}

        def num(key: str, default: float = 0.0) -> float:
            try:
                return float(params.get(key, default))
            except ValueError:
                return default

        if word == "M105":
            self._ok(f"ok {self._temps()}")
            return
        if word == "M115":
            self.send(FIRMWARE_LINE + "\n")
            self.send("".join(f"Cap:{k}:{int(v)}\n" for k, v in CAPS.items()))
        elif word == "M155":
            self.temp_interval = num("S")
            self._next_temp = now + self.temp_interval
        elif word == "M27":
            if "S" in params:
                self.sd_interval = num("S")
                self._next_sd = now + self.sd_interval
            else:
                self.send(self._sd() + "\n")
        elif word in ("M104", "M109"):
            self.hotend[1] = num("S")
        elif word in ("M140", "M190"):
            self.bed[1] = num("S")
        elif word == "M20":
            self.send("Begin file list\n" + "".join(f"{k.upper()} {v}\n" for k, v in self.files.items()))
            self.send("End file list\n")
        elif word == "M28":
            name = rest.strip().upper()
            if not name or len(name.split(".")[0]) > 8:
                self.send(f"open failed, File: {name}.\n")
            else:
                self.writing, self._write_buf = name, []
                self.send(f"Writing to file: {name}\n")
        elif word == "M29":
            if self.writing is not None:
                data = "".join(line + "\n" for line in self._write_buf).encode()
                self.sd_content[self.writing], self.files[self.writing] = data, len(data)
                self.writing, self._write_buf = None, []
                self.send("Done saving file.\n")
        elif word == "M30":
            found = self._sd_file(rest.strip())
            if found is not None:
                self.files.pop(found)
                self.sd_content.pop(found, None)
                self.send(f"File deleted:{found}\n")
            else:
                self.send(f"Deletion failed, File: {rest.strip()}.\n")
        elif word == "M23":
            name = self._sd_file(rest.strip()) or rest.strip()
            if name in self.files:
                self.selected = name
                self.send(f"File opened: {name} Size: {self.files[name]}\nFile selected\n")
            else:
                self.send(f"open failed, File: {name}.\n")
        elif word == "M24":
            if self.printing and self.paused:
                self.paused = False
            elif self.selected:
                self.start_print(self.selected)
        elif word == "M25":
            if self.printing:
                self.paused = True
        elif word == "M524":
            self._end_print()
        elif word == "M112":
            self.send("Error:Printer halted. kill() called!\n")
            self._end_print()
            self.killed = True
            return
        elif word == "M110":
            self.last_line = int(num("N"))
        elif word == "M117":
            self.display = rest.strip()
        elif word == "M81":
            self.psu_on = False
        elif word == "M80":
            self.psu_on = True
        elif not (word[:1] in ("G", "M", "T") and word[1:].isdigit()):
            self.send(f'echo:Unknown command: "{cmd}"\n')
        self._ok()

    def _sd_file(self, name: str) -> str | None:
        """FAT names are case-insensitive."""
        return next((k for k in self.files if k.upper() == name.upper()), None)

    def on_poll(self, now: float) -> None:
        while not self.killed and self._due_ok and self._due_ok[0][0] <= now:
            self.send(self._due_ok.pop(0)[1] + "\n")

    def wake_in(self, now: float) -> float:
        return min(self.tick_s, self._due_ok[0][0] - now) if self._due_ok else self.tick_s

    def on_tick(self, now: float, dt: float) -> None:
        if self.killed or not self.connected:
            return
        for heater in (self.hotend, self.bed):
            target = heater[1] if heater[1] > 0 else self.ambient
            heater[0] += (target - heater[0]) * min(1.0, self.heat_rate * dt)
        if self.printing and not self.paused:
            heated = self.hotend[0] >= self.hotend[1] - 3 and self.bed[0] >= self.bed[1] - 3
            if not heated:
                if now >= self._next_busy:
                    self.send("echo:busy: processing\n")  # M109/M190 in the file are blocking
                    self._next_busy = now + 1.0
            else:
                size = self.files[self.selected or ""]
                self.sd_pos = min(size, self.sd_pos + max(1, int(self.print_rate * dt)))
                if self.sd_pos >= size:
                    self._end_print()
                    self.send("Done printing file\n")
        if self.temp_interval > 0 and now >= self._next_temp:
            self.send(f" {self._temps()}\n")
            self._next_temp = now + self.temp_interval
        if self.sd_interval > 0 and now >= self._next_sd:
            self.send(self._sd() + "\n")
            self._next_sd = now + self.sd_interval
