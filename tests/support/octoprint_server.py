"""A real OctoPrint (its own virtualenv ``.venv-octoprint``, made by ``make test-deps`` from
``tests/support/octoprint/requirements.txt``: its Flask pin conflicts with ours) on a free port in a temp
basedir, with its bundled virtual printer connected, and a user whose API key the tests use.

    server = start_octoprint(tmp_dir)   # skips the test (with the reason) when the venv is missing
    server.url, server.api_key
    server.close()
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-octoprint"
API_KEY = "FABLABTESTKEY0123456789ABCDEF0123"  # OctoPrint keys are 32+ characters of [A-Za-z0-9]

CONFIG = """\
server:
  firstRun: false
  onlineCheck:
    enabled: false
  pluginBlacklist:
    enabled: false
  seenWizards:
    corewizard: 4
    tracking: null
serial:
  autoconnect: false
  additionalPorts: []
plugins:
  virtual_printer:
    enabled: true
  tracking:
    enabled: false
  errortracking:
    enabled: false
  announcements:
    enabled_channels: []
  softwareupdate:
    check_overlay_url: ''
    ignore_throttled: true
  pluginmanager:
    repository: ''
    notices: ''
accessControl:
  autologinLocal: false
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OctoPrintServer:
    url: str
    api_key: str
    basedir: Path
    proc: subprocess.Popen
    log_file: Any = None  # the server's stdout, closed with it

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"X-Api-Key": self.api_key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    def log(self) -> str:
        path = self.basedir / "logs" / "octoprint.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.log_file is not None:
            self.log_file.close()


def start_octoprint(tmp: Path, timeout: float = 120.0) -> OctoPrintServer:
    exe = VENV / "bin" / "octoprint"
    if not exe.exists():
        pytest.skip(f"OctoPrint is not installed ({exe} missing): run `make test-deps`")
    basedir = tmp / "octoprint"
    basedir.mkdir(parents=True, exist_ok=True)
    (basedir / "config.yaml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    # a user with a known API key: made by OctoPrint's own CLI, the key set in its users.yaml
    subprocess.run([str(exe), "--basedir", str(basedir), "user", "add", "bridge", "--password", "bridge-test",
                    "--admin"], check=True, env=env, capture_output=True, timeout=120)
    py = VENV / "bin" / "python"
    subprocess.run([str(py), "-c", (
        "import sys, yaml; p = sys.argv[1]; d = yaml.safe_load(open(p));"
        "d['bridge']['apikey'] = sys.argv[2]; yaml.safe_dump(d, open(p, 'w'))"
    ), str(basedir / "users.yaml"), API_KEY], check=True, env=env, timeout=60)
    port = _free_port()
    out = open(basedir / "serve.log", "wb")  # noqa: SIM115 - kept open for the process's life
    cmd = [str(exe), "serve", "--basedir", str(basedir), "--host", "127.0.0.1", "--port", str(port)]
    if os.geteuid() == 0:
        cmd.append("--iknowwhatimdoing")  # CI and these machines run as root; OctoPrint refuses otherwise
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = OctoPrintServer(f"http://127.0.0.1:{port}", API_KEY, basedir, proc, out)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"OctoPrint exited ({proc.returncode}): "
                                   f"{(basedir / 'serve.log').read_text(errors='replace')[-2000:]}")
            try:
                if server.call("GET", "/api/version")[0] == 200:
                    break
            except (urllib.error.URLError, OSError, http.client.HTTPException):  # still starting up
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"OctoPrint did not answer /api/version within {timeout:.0f} s")
            time.sleep(0.5)
        status, _ = server.call("POST", "/api/connection", {"command": "connect", "port": "VIRTUAL",
                                                            "baudrate": 115200})
        if status != 204:
            raise RuntimeError(f"OctoPrint refused to connect the virtual printer: HTTP {status}")
        while server.call("GET", "/api/connection")[1].get("current", {}).get("state") != "Operational":
            if time.monotonic() > deadline:
                raise RuntimeError("the virtual printer did not become operational")
            time.sleep(0.3)
    except BaseException:
        server.close()
        raise
    return server
