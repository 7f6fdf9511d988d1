"""A private MQTT broker for tests: Mosquitto on a free port with a generated config.

    broker = start_broker(tmp_path)                  # anonymous access
    broker = start_broker(tmp_path, users={"bridge-1": "secret"},
                          acl="user bridge-1\\ntopic readwrite fablab/v1/machine/m1/#\\n")
    broker.url            # "mqtt://127.0.0.1:PORT"
    broker.stop(); broker.start()   # an outage: same port, and (persistence=True) same sessions
    broker.close()        # stop for good

Uses ``/usr/sbin/mosquitto`` (or ``$MOSQUITTO``/``mosquitto`` on PATH); falls back to an embedded amqtt
broker in a background thread only when no binary exists (no passwords/ACLs/persistence there, and
amqtt 0.12 leaks client transports at shutdown, which strict ``-W error`` runs may report).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path


def find_mosquitto() -> str | None:
    for candidate in (os.environ.get("MOSQUITTO"), "/usr/sbin/mosquitto", shutil.which("mosquitto")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"broker did not listen on {host}:{port} within {timeout}s") from None
            time.sleep(0.02)


class Broker:
    """A broker process bound to ``host:port``; ``stop()``/``start()`` keep the port and the data dir."""

    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        persistence: bool = True,
        binary: str | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.users = dict(users or {})
        self.acl = acl
        self.persistence = persistence
        self.binary = binary if binary is not None else find_mosquitto()
        self._proc: subprocess.Popen[bytes] | None = None
        self._embedded: _EmbeddedBroker | None = None
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def kind(self) -> str:
        return "mosquitto" if self.binary else "amqtt"

    @property
    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._embedded is not None

    def _write_config(self) -> None:
        lines = [f"listener {self.port} {self.host}", "log_dest stderr", "log_type error", "log_type warning"]
        # Run as root, mosquitto would drop to user "mosquitto" and could not write our temp dir
        # (persistence, then restored sessions, silently lost); as anyone else this line is ignored.
        lines.append(f"user {getpass.getuser()}")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/", "autosave_interval 1"]
        if self.users:
            pwfile = self.workdir / "passwd"
            pwfile.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            pwfile.chmod(0o600)
            # mosquitto_passwd -U hashes the plain-text file in place
            subprocess.run(["mosquitto_passwd", "-U", str(pwfile)], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            aclfile = self.workdir / "acl"
            aclfile.write_text(self.acl)
            aclfile.chmod(0o600)
            lines.append(f"acl_file {aclfile}")
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> Broker:
        if self.running:
            return self
        if self.binary:
            self._write_config()
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)], stdout=log, stderr=log, start_new_session=True
            )
            log.close()
        else:
            # no TCP probe here: amqtt leaks the transport of a connection that sends no CONNECT
            self._embedded = _EmbeddedBroker(self.host, self.port)
            if not self._embedded.start():
                self._embedded = None
                raise RuntimeError("embedded amqtt broker failed to start")
            return self
        try:
            wait_for_port(self.host, self.port, timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"broker failed to start: {self.log_text()}") from None
        return self

    def stop(self) -> None:
        """Stop the broker (its sessions and retained messages are saved when ``persistence``)."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None

    def restart(self) -> Broker:
        self.stop()
        return self.start()

    close = stop

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_broker(tmp_path: Path | str | None = None, **opts: object) -> Broker:
    """Start a private broker (options as for ``Broker``) and return it, listening."""
    workdir = Path(tmp_path) if tmp_path is not None else Path(tempfile.mkdtemp(prefix="broker-"))
    return Broker(workdir, **opts).start()  # type: ignore[arg-type]


class _EmbeddedBroker:
    """amqtt in a thread with its own event loop: only for machines without a Mosquitto binary."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._thread: threading.Thread | None = None
        self._loop = None
        self._broker = None
        self._ready = threading.Event()

    def start(self) -> bool:
        import asyncio

        from amqtt.broker import Broker as AmqttBroker

        config = {  # amqtt >= 0.12 style: plugins by dotted path (the older keys warn)
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._broker = AmqttBroker(config, loop=loop)
            loop.run_until_complete(self._broker.start())
            self._ready.set()
            loop.run_forever()
            try:
                loop.run_until_complete(self._broker.shutdown())
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        return self._ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
