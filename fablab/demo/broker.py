"""The broker for the one-command demo: a private Mosquitto (with per-bridge credentials and ACLs from
the database) when the binary is installed, else an embedded amqtt broker. Production runs a real
Mosquitto (or a cluster) configured with `fablab mosquitto-config`."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the broker did not start on port {port}")


def find_mosquitto() -> str | None:
    for candidate in (os.environ.get("MOSQUITTO"), shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class DemoBroker:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.kind = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._embedded: Any = None

    def start_mosquitto(self, binary: str, passwd: Path, acl: Path) -> None:
        conf = self.workdir / "mosquitto.conf"
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
            f"persistence true\npersistence_location {data}/\nuser {getpass.getuser()}\n"
            "max_queued_messages 100000\nlog_dest stderr\nlog_type error\nlog_type warning\n")
        self._proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        self.kind = "mosquitto"

    def start_embedded(self) -> None:
        import asyncio

        from amqtt.broker import Broker

        config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}}, "sys_interval": 0,
                  "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
                  "topic-check": {"enabled": False}}
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            broker = Broker(config, loop=loop)
            loop.run_until_complete(broker.start())
            self._embedded = (loop, broker)
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, name="embedded-broker", daemon=True).start()
        if not ready.wait(15):
            raise RuntimeError("the embedded broker did not start")
        self.kind = "embedded (amqtt)"

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._embedded is not None:
            loop, _ = self._embedded
            loop.call_soon_threadsafe(loop.stop)
