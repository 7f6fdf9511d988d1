"""The bridge daemon as an object: ``Bridge(config).start()`` ... ``stop()``. Used by the CLI, the tests
and the demo (which runs bridges against simulators in-process)."""

from __future__ import annotations

import logging
import threading

from fablab_bridge.config import BridgeConfig
from fablab_bridge.machine import MachineRunner
from fablab_bridge.mqtt_link import MqttLink
from fablab_bridge.print_jobs import PrintJobs
from fablab_bridge.store import Store

log = logging.getLogger(__name__)


class Bridge:
    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(config.state_dir / "bridge.sqlite3")
        self.link = MqttLink(config.mqtt, config.id, self.store)
        self.machines = {m.id: MachineRunner(m, config.id, self.link, self.store) for m in config.machines}
        spool = config.spool_dir or config.state_dir / "spool"
        self.print_jobs = {mid: PrintJobs(r, spool) for mid, r in self.machines.items()}  # job/* on each
        self._stopped = threading.Event()

    def start(self) -> Bridge:
        """Raises OSError (nothing left running) if a pass-through pty or TCP port cannot be opened."""
        opened: list[MachineRunner] = []
        for runner in self.machines.values():
            try:
                runner.open_passthrough()
            except OSError as exc:
                for done in opened:
                    done.stop()
                where = runner.passthrough.path if runner.passthrough else ""
                msg = f"machine '{runner.id}': cannot open pass-through {where}: {exc.strerror or exc}"
                raise OSError(exc.errno, msg) from exc
            opened.append(runner)
        for runner in self.machines.values():
            runner.start()
        self.link.start()
        log.info("bridge %s started with %s", self.config.id, ", ".join(self.machines))
        return self

    def stop(self, graceful: bool = True) -> None:
        """Graceful: announce ``online: false``; otherwise leave it to the Last Will (like a crash)."""
        for runner in self.machines.values():
            runner.stop()
        self.link.stop(graceful=graceful)
        self.store.close()
        self._stopped.set()

    def wait(self) -> None:
        self._stopped.wait()

    def __enter__(self) -> Bridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
