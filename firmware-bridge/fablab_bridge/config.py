"""The bridge's TOML config: loaded and validated up front, so a typo stops the daemon with a clear message
(exit status 2) instead of failing later next to a machine nobody watches."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

DRIVERS = ("marlin", "grbl", "power_plug", "octoprint", "moonraker")
PLUG_KINDS = ("tasmota", "shelly")
READERS = ("rdm6300", "wedge")
LOCK_MODES = ("none", "plug", "firmware")
TRANSFERS = ("sd", "stream", "octoprint", "moonraker")  # how a queued print reaches the machine
_TRANSFER_DRIVERS = {"sd": ("marlin",), "stream": ("marlin", "grbl"), "octoprint": ("octoprint",),
                     "moonraker": ("moonraker",)}
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
DEFAULT_TCP_HOST = "127.0.0.1"  # the raw protocol has no authentication: local senders only by default


class ConfigError(ValueError):
    pass


@dataclass
class MqttConfig:
    host: str = "localhost"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False
    keepalive: int = 30
    client_id: str | None = None
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0


@dataclass
class PlugConfig:
    kind: str
    device: str  # Tasmota topic name or Shelly device id (its MQTT topic prefix)
    threshold_w: float = 10.0
    min_on_s: float = 10.0
    min_off_s: float = 60.0


@dataclass
class BadgeConfig:
    reader: str
    port: str  # RDM6300 serial port, or for "wedge" a line stream (tty, FIFO)
    baud: int = 9600
    debounce_s: float = 1.5


@dataclass
class MachineConfig:
    id: str
    driver: str
    port: str | None = None
    baud: int = 115200
    poll_interval: float = 2.0  # M105/M27 polling or M155/M27 S auto-report interval; GRBL `?` rate
    telemetry_interval: float = 10.0
    boot_wait: float = 3.0  # how long to wait for the banner after opening the port
    ack_timeout: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    session_idle_s: float = 600.0  # an open session without a job ends after this long
    stream_idle_s: float = 60.0  # Marlin pass-through: a host's streamed print ends when it stops this long
    lock: str = "none"
    start_locked: bool = False
    auth_timeout: float = 5.0
    passthrough: str | None = None  # GRBL, Marlin: symlink path of the pty offered to a G-code sender
    passthrough_tcp: tuple[str, int] | None = None  # GRBL, Marlin: (host, port) a sender connects to
    source: str | None = None  # octoprint: the plugin's base topic; moonraker: the instance name
    plug: PlugConfig | None = None
    badge: BadgeConfig | None = None
    transfer: str | None = None  # sd, stream, octoprint, moonraker: accepts queued prints (job/offer)
    octoprint_url: str | None = None  # http://host:port of OctoPrint's REST API
    octoprint_api_key: str | None = field(default=None, repr=False)  # a secret: never logged
    moonraker_url: str | None = None
    moonraker_api_key: str | None = field(default=None, repr=False)
    download_timeout: float = 30.0  # seconds without data before a job's download is given up
    start_timeout: float = 60.0  # seconds for the machine to report the print running after JobStart


@dataclass
class BridgeConfig:
    id: str
    state_dir: Path
    mqtt: MqttConfig
    machines: list[MachineConfig] = field(default_factory=list)
    log_level: str = "INFO"
    spool_dir: Path | None = None  # queued prints' files and state (default: state_dir/spool)


def _take(table: dict[str, Any], key: str, types: type | tuple[type, ...], where: str, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}: missing required key '{key}'")
        return default
    value = table[key]
    ok_types = types if isinstance(types, tuple) else (types,)
    if float in ok_types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and bool not in ok_types or not isinstance(value, ok_types):
        names = " or ".join(t.__name__ for t in ok_types)
        raise ConfigError(f"{where}.{key}: expected {names}, got {type(value).__name__} {value!r}")
    return value


def _unknown(table: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}")


def _positive(value: float, where: str) -> float:
    if value <= 0:
        raise ConfigError(f"{where}: must be > 0, got {value}")
    return value


def _choice(value: str, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise ConfigError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
    return value


def _ident(value: str, where: str) -> str:
    if not _ID_RE.match(value):
        raise ConfigError(f"{where}: {value!r} is not a valid id (letters, digits, . _ : -)")
    return value


def listen_address(value: str | int, where: str) -> tuple[str, int]:
    """``"host:port"``, ``"[v6]:port"`` or a bare port (bound to 127.0.0.1) -> (host, port).
    Port 0 lets the kernel pick a free port (tests)."""
    hint = f'{where}: expected "host:port" such as "127.0.0.1:2300", got {value!r}'
    if isinstance(value, int):
        host, port_text = DEFAULT_TCP_HOST, str(value)
    elif value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise ConfigError(hint)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{where}: {host!r} is not an IPv6 address") from None
    elif value.isdigit():
        host, port_text = DEFAULT_TCP_HOST, value
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host:
            raise ConfigError(hint)
        if ":" in host:
            raise ConfigError(f'{where}: write an IPv6 address in brackets, e.g. "[::1]:2300"')
        if not _HOST_RE.match(host):
            raise ConfigError(f"{where}: {host!r} is not a host name or IP address")
        if re.fullmatch(r"[0-9.]+", host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ConfigError(f"{where}: {host!r} is not an IPv4 address") from None
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ConfigError(f"{where}: port must be 0..65535, got {port_text!r}")
    return host, int(port_text)


def _mqtt(raw: dict[str, Any], bridge_id: str) -> MqttConfig:
    w = "[mqtt]"
    known = set(MqttConfig.__dataclass_fields__) | {"url", "password_file"}
    _unknown(raw, known, w)
    cfg = MqttConfig()
    if "url" in raw:
        url = urlparse(_take(raw, "url", str, w))
        if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
            raise ConfigError(f"{w}.url: expected mqtt://[user:pass@]host[:port] or mqtts://...")
        cfg.host, cfg.tls = url.hostname, url.scheme == "mqtts"
        cfg.port = url.port or (8883 if cfg.tls else 1883)
        cfg.username, cfg.password = url.username, url.password
    cfg.host = _take(raw, "host", str, w, cfg.host)
    cfg.port = _take(raw, "port", int, w, cfg.port)
    if not 0 < cfg.port < 65536:
        raise ConfigError(f"{w}.port: out of range: {cfg.port}")
    cfg.username = _take(raw, "username", str, w, cfg.username)
    cfg.password = _take(raw, "password", str, w, cfg.password)
    if "password_file" in raw:
        path = Path(_take(raw, "password_file", str, w))
        try:
            cfg.password = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{w}.password_file: cannot read {path}: {exc.strerror}") from None
    cfg.tls = _take(raw, "tls", bool, w, cfg.tls)
    for key in ("ca_file", "cert_file", "key_file"):
        value = _take(raw, key, str, w, None)
        if value is not None and not Path(value).is_file():
            raise ConfigError(f"{w}.{key}: no such file: {value}")
        setattr(cfg, key, value)
    cfg.tls_insecure = _take(raw, "tls_insecure", bool, w, False)
    cfg.keepalive = _take(raw, "keepalive", int, w, cfg.keepalive)
    cfg.client_id = _take(raw, "client_id", str, w, f"fablab-bridge-{bridge_id}")
    cfg.reconnect_min = _positive(_take(raw, "reconnect_min", float, w, cfg.reconnect_min), f"{w}.reconnect_min")
    cfg.reconnect_max = _positive(_take(raw, "reconnect_max", float, w, cfg.reconnect_max), f"{w}.reconnect_max")
    return cfg


def _machine(raw: Any, index: int) -> MachineConfig:
    w = f"[[machine]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{w}: must be a table")
    _unknown(raw, set(MachineConfig.__dataclass_fields__) | {"octoprint_api_key_file", "moonraker_api_key_file"}, w)
    mid = _ident(_take(raw, "id", str, w), f"{w}.id")
    w = f"machine '{mid}'"
    driver = _choice(_take(raw, "driver", str, w), DRIVERS, f"{w}.driver")
    m = MachineConfig(id=mid, driver=driver)
    m.port = _take(raw, "port", str, w, None)
    if driver in ("marlin", "grbl") and not m.port:
        raise ConfigError(f"{w}: driver {driver} needs 'port' (e.g. /dev/ttyUSB0)")
    m.baud = _take(raw, "baud", int, w, m.baud)
    for key in ("poll_interval", "telemetry_interval", "boot_wait", "ack_timeout", "reconnect_min",
                "reconnect_max", "session_idle_s", "auth_timeout", "stream_idle_s"):
        setattr(m, key, _positive(_take(raw, key, float, w, getattr(m, key)), f"{w}.{key}"))
    if driver == "grbl" and m.poll_interval < 0.2:
        raise ConfigError(f"{w}.poll_interval: GRBL status polling is limited to 5 Hz (>= 0.2 s)")
    m.lock = _choice(_take(raw, "lock", str, w, m.lock), LOCK_MODES, f"{w}.lock")
    m.start_locked = _take(raw, "start_locked", bool, w, False)
    m.passthrough = _take(raw, "passthrough", str, w, None)
    m.source = _take(raw, "source", str, w, "octoPrint" if driver == "octoprint" else None)
    if driver == "moonraker" and not m.source:
        raise ConfigError(f"{w}: driver moonraker needs 'source' (Moonraker's MQTT instance_name)")
    if "passthrough_tcp" in raw:
        value = _take(raw, "passthrough_tcp", (str, int), w)
        m.passthrough_tcp = listen_address(value, f"{w}.passthrough_tcp")
    for key in ("passthrough", "passthrough_tcp"):
        if getattr(m, key) and driver not in ("grbl", "marlin"):
            raise ConfigError(f"{w}.{key}: only supported for the grbl and marlin drivers")
    if m.passthrough and m.passthrough_tcp:
        raise ConfigError(f"{w}: use either passthrough (pty) or passthrough_tcp, not both: "
                          "a controller can serve one G-code sender at a time")
    if "plug" in raw:
        p = _take(raw, "plug", dict, w)
        pw = f"{w}.plug"
        _unknown(p, set(PlugConfig.__dataclass_fields__), pw)
        m.plug = PlugConfig(
            kind=_choice(_take(p, "kind", str, pw), PLUG_KINDS, f"{pw}.kind"),
            device=_take(p, "device", str, pw),
            threshold_w=_positive(_take(p, "threshold_w", float, pw, 10.0), f"{pw}.threshold_w"),
            min_on_s=_take(p, "min_on_s", float, pw, 10.0),
            min_off_s=_take(p, "min_off_s", float, pw, 60.0),
        )
    if driver == "power_plug" and m.plug is None:
        raise ConfigError(f"{w}: driver power_plug needs a [machine.plug] table")
    if m.lock == "plug" and m.plug is None:
        raise ConfigError(f"{w}.lock: 'plug' needs a [machine.plug] table")
    if m.lock == "firmware" and driver != "marlin":
        raise ConfigError(f"{w}.lock: 'firmware' is only supported for marlin (use a plug)")
    _transfer(raw, m, w)
    if "badge" in raw:
        b = _take(raw, "badge", dict, w)
        bw = f"{w}.badge"
        _unknown(b, set(BadgeConfig.__dataclass_fields__), bw)
        m.badge = BadgeConfig(
            reader=_choice(_take(b, "reader", str, bw), READERS, f"{bw}.reader"),
            port=_take(b, "port", str, bw),
            baud=_take(b, "baud", int, bw, 9600),
            debounce_s=_take(b, "debounce_s", float, bw, 1.5),
        )
    return m


def _http_url(value: str, where: str) -> str:
    url = urlparse(value)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"{where}: expected http(s)://host[:port], got {value!r}")
    return value.rstrip("/")


def _transfer(raw: dict[str, Any], m: MachineConfig, w: str) -> None:
    m.transfer = _take(raw, "transfer", str, w, None)
    for key in ("download_timeout", "start_timeout"):
        setattr(m, key, _positive(_take(raw, key, float, w, getattr(m, key)), f"{w}.{key}"))
    for server in ("octoprint", "moonraker"):
        url = _take(raw, f"{server}_url", str, w, None)
        setattr(m, f"{server}_url", _http_url(url, f"{w}.{server}_url") if url else None)
        key = _take(raw, f"{server}_api_key", str, w, None)
        if f"{server}_api_key_file" in raw:
            path = Path(_take(raw, f"{server}_api_key_file", str, w))
            try:
                key = path.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{w}.{server}_api_key_file: cannot read {path}: {exc.strerror}") from None
        setattr(m, f"{server}_api_key", key)
    if m.transfer is None:
        return
    _choice(m.transfer, TRANSFERS, f"{w}.transfer")
    if m.driver not in _TRANSFER_DRIVERS[m.transfer]:
        raise ConfigError(f"{w}.transfer: {m.transfer!r} needs driver {' or '.join(_TRANSFER_DRIVERS[m.transfer])}, "
                          f"not {m.driver}")
    if m.transfer == "octoprint" and not (m.octoprint_url and m.octoprint_api_key):
        raise ConfigError(f"{w}: transfer octoprint needs octoprint_url and octoprint_api_key (or _file)")
    if m.transfer == "moonraker" and not m.moonraker_url:
        raise ConfigError(f"{w}: transfer moonraker needs moonraker_url")


def parse_config(raw: dict[str, Any]) -> BridgeConfig:
    _unknown(raw, {"bridge", "mqtt", "machine"}, "config")
    b = raw.get("bridge")
    if not isinstance(b, dict):
        raise ConfigError("config: missing [bridge] table")
    _unknown(b, {"id", "state_dir", "log_level", "spool_dir"}, "[bridge]")
    bridge_id = _ident(_take(b, "id", str, "[bridge]"), "[bridge].id")
    state_dir = Path(_take(b, "state_dir", str, "[bridge]"))
    log_level = _take(b, "log_level", str, "[bridge]", "INFO").upper()
    _choice(log_level, ("DEBUG", "INFO", "WARNING", "ERROR"), "[bridge].log_level")
    mqtt_raw = raw.get("mqtt", {})
    if not isinstance(mqtt_raw, dict):
        raise ConfigError("[mqtt]: must be a table")
    machines_raw = raw.get("machine")
    if not isinstance(machines_raw, list) or not machines_raw:
        raise ConfigError("config: at least one [[machine]] table is required")
    machines = [_machine(m, i) for i, m in enumerate(machines_raw)]
    ids = [m.id for m in machines]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"config: duplicate machine id(s) {', '.join(dupes)}")
    spool = _take(b, "spool_dir", str, "[bridge]", None)
    return BridgeConfig(
        id=bridge_id, state_dir=state_dir, mqtt=_mqtt(mqtt_raw, bridge_id), machines=machines, log_level=log_level,
        spool_dir=Path(spool) if spool else state_dir / "spool",
    )


def load_config(path: str | Path) -> BridgeConfig:
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(raw)
