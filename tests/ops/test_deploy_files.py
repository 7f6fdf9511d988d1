"""The production recipe in deploy/, checked for real where this machine can: `systemd-analyze verify` on
the units (their binaries pointed at this checkout's venv), the CLI commands they run, gunicorn's
`--check-config` with deploy/gunicorn.conf.py, nginx running deploy/nginx/fablab.conf (TLS, redirect,
static files and their caching, the proxy headers the app trusts), and Mosquitto started with
deploy/mosquitto/fablab.conf and the files of `fablab mosquitto-config`, a bridge connecting over TLS."""

from __future__ import annotations

import configparser
import getpass
import http.server
import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import find_mosquitto, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
UNITS = ["fablab-web.service", "fablab-worker.service", "fablab-notify.service", "fablab-bridge@.service"]


def _unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign] - systemd keys are case-sensitive
    cp.read(DEPLOY / "systemd" / name)
    return cp


def _fablab(*args: str) -> subprocess.CompletedProcess[str]:
    """`fablab ARGS` from this checkout (the venv's script may belong to another checkout of the project)."""
    return subprocess.run([sys.executable, "-c", "from fablab.cli import main; main()", *args], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "FABLAB_DATABASE_URL": "sqlite://"})


def _cli_commands() -> set[str]:
    out = _fablab("--help").stdout
    return set(re.findall(r"^  ([a-z][a-z0-9-]*)\s", out, re.M))


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    return cert, key


# --- systemd ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", UNITS)
def test_units_run_commands_that_exist(name: str) -> None:
    unit = _unit(name)
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    assert unit["Service"]["Restart"] == "always"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    argv = shlex.split(unit["Service"]["ExecStart"])
    program = Path(argv[0]).name
    assert argv[0].startswith("/opt/fablab/.venv/bin/") and (VENV_BIN / program).exists(), argv
    if program == "fablab":
        sub = argv[1]
        if sub not in _cli_commands():
            if sub == "notify":
                pytest.skip("`fablab notify` (the delivery process) is not registered on this branch yet")
            raise AssertionError(f"`fablab {sub}` is not a command")
        help_out = _fablab(sub, "--help")
        assert help_out.returncode == 0, help_out.stderr
        for opt in (a.split("=")[0] for a in argv[2:] if a.startswith("--")):
            assert opt in help_out.stdout, f"`fablab {sub}` has no option {opt}"
    if program == "gunicorn":
        assert argv[1:3] == ["-c", "deploy/gunicorn.conf.py"] and (ROOT / argv[2]).exists()
        assert unit["Service"]["WorkingDirectory"] == "/opt/fablab"
    if program == "fablab-bridge":
        assert "%i" in argv[-1] and "--check" in unit["Service"]["ExecStartPre"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    paths = []
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text().replace("/opt/fablab/.venv/bin", str(VENV_BIN))
        target = tmp_path / name.replace("@.", "@demo.")  # a template is verified as an instance
        target.write_text(text)
        paths.append(str(target))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *paths], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if str(tmp_path) in line or "fablab" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_gunicorn_loads_the_app_with_the_deploy_config(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()  # gunicorn's on_starting hook makes it in a real start
    env = {**os.environ, "FABLAB_METRICS_DIR": str(tmp_path / "metrics"),
           "FABLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "FABLAB_SECRET_KEY": "x" * 32}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = subprocess.run([str(VENV_BIN / "gunicorn"), "--check-config", "-c", "deploy/gunicorn.conf.py",
                             "fablab:create_app()"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_web_units_commands_migrate_and_serve(tmp_path: Path) -> None:
    """ExecStartPre then ExecStart of fablab-web.service, with the unit's environment, on a fresh database:
    migrated, then gunicorn answers /readyz."""
    unit = _unit("fablab-web.service")["Service"]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= dict(pair.split("=", 1) for pair in shlex.split(unit["Environment"]))
    for name in unit.get("UnsetEnvironment", "").split():
        env.pop(name, None)
    port = free_port()
    env |= {"FABLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "FABLAB_SECRET_KEY": "k" * 32,
            "FABLAB_METRICS_DIR": str(tmp_path / "metrics"), "FABLAB_BIND": f"127.0.0.1:{port}",
            "FABLAB_WORKERS": "1", "FABLAB_UPLOAD_DIR": str(tmp_path / "uploads")}
    pre = shlex.split(unit["ExecStartPre"])
    assert pre[1:] == ["init-db"]
    migrated = subprocess.run([sys.executable, "-c", "from fablab.cli import main; main()", *pre[1:]], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    argv = shlex.split(unit["ExecStart"])
    proc = subprocess.Popen([str(VENV_BIN / "gunicorn"), *argv[1:]], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as resp:
            assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]


# --- nginx ------------------------------------------------------------------------------------------


class _Echo(http.server.BaseHTTPRequestHandler):
    """The upstream: answers with the headers it was sent (what gunicorn and ProxyFix would see)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[dict[str, int]]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(binary, os.X_OK):
        pytest.skip("no nginx (apt-get install nginx)")
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    cert, key = _self_signed(tmp_path)
    http_port, https_port = free_port(), free_port()
    site = (DEPLOY / "nginx" / "fablab.conf").read_text()
    site = (site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
            .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
            .replace("listen [::]:80;", "").replace("listen [::]:443 ssl http2;", "")
            .replace("/etc/letsencrypt/live/lab.example.org/fullchain.pem", str(cert))
            .replace("/etc/letsencrypt/live/lab.example.org/privkey.pem", str(key))
            .replace("/etc/nginx/fablab_proxy_headers.conf", str(DEPLOY / "nginx" / "fablab_proxy_headers.conf"))
            .replace("/opt/fablab/static/", f"{ROOT}/static/")
            .replace("127.0.0.1:8000", f"127.0.0.1:{upstream.server_port}"))
    (tmp_path / "site.conf").write_text(site)
    mime = "include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else ""
    (tmp_path / "nginx.conf").write_text(
        f"daemon off; master_process off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{ {mime} access_log off; client_body_temp_path {tmp_path}/body;"
        f" proxy_temp_path {tmp_path}/proxy; include {tmp_path}/site.conf; }}\n")
    test = subprocess.run([binary, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                          capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    proc = subprocess.Popen([binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", https_port)
        yield {"http": http_port, "https": https_port}
    finally:
        proc.terminate()
        proc.wait(5)
        upstream.shutdown()
        upstream.server_close()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # our throwaway self-signed certificate

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=ctx))
    req = urllib.request.Request(url, headers={"Host": "lab.example.org", **(headers or {})})
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def test_nginx_serves_tls_static_files_and_proxies_with_the_trusted_headers(nginx: dict[str, int]) -> None:
    status, headers, _ = _get(f"http://127.0.0.1:{nginx['http']}/machines?x=1")
    assert status == 301 and headers["Location"] == "https://lab.example.org/machines?x=1"

    base = f"https://127.0.0.1:{nginx['https']}"
    status, headers, body = _get(f"{base}/static/css/app.css?v=0123abcd")
    assert status == 200 and body == (ROOT / "static/css/app.css").read_bytes()  # from disk, not the app
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    status, headers, _ = _get(f"{base}/static/css/app.css")
    assert status == 200 and headers["Cache-Control"] == "no-cache"
    assert _get(f"{base}/static/vendor/axe-core/axe.min.js")[0] == 404
    # nginx normalises the path first: this goes to the app as /fablab/config.py, never to the file
    assert b"load_config" not in _get(f"{base}/static/../fablab/config.py")[2]
    assert b"load_config" not in _get(f"{base}/static/..%2ffablab/config.py")[2]

    # the client's own X-Forwarded-* never reach the app as the last hop: nginx sets them
    status, _, body = _get(f"{base}/bookings", {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"})
    seen = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert status == 200
    assert seen["x-forwarded-proto"] == "https" and seen["x-forwarded-host"] == "lab.example.org"
    assert seen["host"] == "lab.example.org" and seen["x-forwarded-for"].split(",")[-1].strip() == "127.0.0.1"
    assert re.fullmatch(r"[0-9a-f]{32}", seen["x-request-id"])
    assert _get(f"{base}/metrics")[0] == 200  # loopback is on the allow list


def test_nginx_limits_match_the_app(app) -> None:
    site = (DEPLOY / "nginx" / "fablab.conf").read_text()
    assert app.config["FABLAB_MAX_UPLOAD_MB"] == 200  # the default the file is written for
    limit = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)  # the upload plus 1 MB for the form
    assert f"client_max_body_size {limit}m;" in site
    metrics = re.search(r"location = /metrics \{(.*?)\}", site, re.S)
    assert metrics and "deny all;" in metrics.group(1)
    headers = (DEPLOY / "nginx" / "fablab_proxy_headers.conf").read_text()
    for h in ("X-Forwarded-For $proxy_add_x_forwarded_for", "X-Forwarded-Proto $scheme", "X-Forwarded-Host $host"):
        assert f"proxy_set_header {h};" in headers


# --- Mosquitto --------------------------------------------------------------------------------------


@pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")
def test_mosquitto_runs_the_deploy_config_with_tls_and_the_generated_acl(app, app_ctx, make_machine,
                                                                         monkeypatch, tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt

    from fablab.extensions import db
    from fablab.services import usage as usage_service

    make_machine("printer-1")
    _, bridge_password = usage_service.add_bridge("bridge-a", ["printer-1"])
    db.session.commit()
    monkeypatch.setitem(app.config, "FABLAB_MQTT_URL", "mqtt://fablab:server-secret@127.0.0.1:1883")
    result = app.test_cli_runner().invoke(args=["mosquitto-config", str(tmp_path / "fablab")])
    assert result.exit_code == 0, result.output
    cert, key = _self_signed(tmp_path)
    plain, tls = free_port(), free_port()
    conf = (DEPLOY / "mosquitto" / "fablab.conf").read_text()
    assert "max_queued_messages 10000" in conf and "persistence true" in conf
    conf = (conf.replace("/etc/mosquitto/fablab/", f"{tmp_path}/fablab/")
            .replace("listener 1883 127.0.0.1", f"listener {plain} 127.0.0.1")
            .replace("listener 8883", f"listener {tls} 127.0.0.1")
            .replace("/etc/mosquitto/certs/fullchain.pem", str(cert))
            .replace("/etc/mosquitto/certs/privkey.pem", str(key))
            .replace("/var/lib/mosquitto/", f"{tmp_path}/")
            .replace("log_dest syslog", "log_dest stderr")) + f"\nuser {getpass.getuser()}\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    proc = subprocess.Popen([find_mosquitto(), "-c", str(tmp_path / "mosquitto.conf")],  # type: ignore[list-item]
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    received: list[bytes] = []
    clients = []
    try:
        try:
            wait_for_port("127.0.0.1", tls)
        except TimeoutError:
            proc.terminate()
            raise AssertionError(proc.communicate(timeout=5)[0].decode()) from None
        ready = threading.Event()
        server = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="server")
        server.username_pw_set("fablab", "server-secret")
        server.on_connect = lambda c, u, f, rc, p=None: c.subscribe("fablab/v1/#", qos=1)
        server.on_subscribe = lambda *a: ready.set()
        server.on_message = lambda c, u, m: received.append(m.payload)
        server.connect("127.0.0.1", plain)
        server.loop_start()
        clients.append(server)
        assert ready.wait(5), "the server user could not subscribe on the loopback listener"
        bridge = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bridge-a")
        bridge.username_pw_set("bridge-a", bridge_password)
        bridge.tls_set(ca_certs=str(cert))
        connected = threading.Event()
        bridge.on_connect = lambda c, u, f, rc, p=None: connected.set() if not rc.is_failure else None
        bridge.connect("127.0.0.1", tls)
        bridge.loop_start()
        clients.append(bridge)
        assert connected.wait(5), "the bridge could not connect over TLS"
        bridge.publish("fablab/v1/machine/printer-1/status", b'{"ok": 1}', qos=1).wait_for_publish(5)
        bridge.publish("fablab/v1/machine/laser-9/status", b'{"not": "its machine"}', qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert received == [b'{"ok": 1}']  # the ACL dropped the other machine's topic
    finally:
        for c in clients:
            c.disconnect()
            c.loop_stop()
        proc.terminate()
        proc.wait(5)
        if proc.stdout:
            proc.stdout.close()
