"""Run firmware simulators as a process, for demos and for trying the bridge by hand.

    python -m devices.simulators --marlin /tmp/fablab-prusa --grbl /tmp/fablab-cnc --demo

Each path becomes a symlink to a pty that behaves like the machine's serial port; point
``fablab-bridge`` at it (``port = "/tmp/fablab-prusa"``). ``--demo`` starts a print / a CNC job every
``--every`` seconds so dashboards have something to show. Stops on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading

from devices.simulators.grbl_sim import GrblSimulator
from devices.simulators.marlin_sim import MarlinSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devices.simulators", description=__doc__.splitlines()[0])
    parser.add_argument("--marlin", action="append", default=[], metavar="PATH", help="Marlin printer at PATH")
    parser.add_argument("--grbl", action="append", default=[], metavar="PATH", help="GRBL controller at PATH")
    parser.add_argument("--demo", action="store_true", help="start jobs periodically")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between demo jobs")
    parser.add_argument("--print-seconds", type=float, default=30.0, help="length of a demo print")
    args = parser.parse_args(argv)
    if not args.marlin and not args.grbl:
        parser.error("give at least one --marlin or --grbl path")
    size = 20_000
    marlins = [MarlinSimulator(p, files={"demo.gcode": size}, print_rate=size / args.print_seconds)
               for p in args.marlin]
    grbls = [GrblSimulator(p, move_time=0.5) for p in args.grbl]
    for sim in [*marlins, *grbls]:
        print(f"{type(sim).__name__} on {sim.start()}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(args.every if args.demo else 3600):
        for m in marlins:
            if m.connected and not m.printing:
                m.start_print("demo.gcode")
        for g in grbls:
            if g.connected and g.state == "Idle":
                g.run_job(moves=int(args.print_seconds / 0.5))
    for sim in [*marlins, *grbls]:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
