"""The GRBL pass-through over TCP (like ser2net): a G-code sender on a socket, the bridge in between."""

import socket
import time

import pytest
from fablab_bridge.__main__ import main
from fablab_bridge.config import ConfigError, parse_config

from devices.lines import LineBuffer
from devices.passthrough import BUSY_MESSAGE
from tests.bridge.conftest import wait_until


def read_lines(sock, seconds):
    buf, lines = LineBuffer(), []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            break
        if not data:
            break
        lines += buf.feed(data)
    return lines


def start_cnc(make_bridge, sim, uid, **extra):
    m = uid("cnc")
    bridge = make_bridge([{"id": m, "driver": "grbl", "port": sim.path, "passthrough_tcp": "127.0.0.1:0"} | extra],
                         bridge_id=uid("b"))
    return m, bridge.machines[m].passthrough


def connect(port):
    sock = socket.create_connection(port.address, timeout=2)
    wait_until(port.connected, what="bridge to accept the sender")
    return sock


def test_sender_over_tcp_sees_only_its_own_traffic(grbl_sim, make_bridge, recorder, uid):
    rec = recorder()
    sim = grbl_sim()
    m, port = start_cnc(make_bridge, sim, uid)
    rec.wait_state(m, "idle")
    assert port.address[0] == "127.0.0.1" and port.address[1] > 0
    with connect(port) as sender:
        before = sim.status_queries
        assert not [x for x in read_lines(sender, 0.8) if x.startswith("<")]  # the bridge polls, unseen
        assert sim.status_queries - before >= 3
        sender.sendall(b"$I\n")
        lines = read_lines(sender, 0.4)
        assert "[VER:1.1h.20190825:]" in lines and "ok" in lines
        sender.sendall(b"?")
        status = [x for x in read_lines(sender, 0.6) if x.startswith("<")]
        assert len(status) == 1 and status[0].startswith("<Idle|MPos:")
        sender.sendall(b"G1 X5 F500\nG1 Y5\nG1 X0 Y0\nG1 X2\nM2\n")
        lines = read_lines(sender, 1.0)
        assert lines.count("ok") == 5 and "[MSG:Pgm End]" in lines
        assert not [x for x in lines if x.startswith("<")]
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"])
    assert evs[2].reason == "done"
    assert "busy" in rec.states(m)
    assert any(line.startswith("G1 X5") for line in sim.received)  # forwarded unchanged


def test_second_sender_is_refused_while_the_first_keeps_the_port(grbl_sim, make_bridge, recorder, uid):
    rec = recorder()
    sim = grbl_sim()
    m, port = start_cnc(make_bridge, sim, uid)
    rec.wait_state(m, "idle")
    with connect(port) as first:
        with socket.create_connection(port.address, timeout=2) as second:
            got = b"".join(iter(lambda: second.recv(100), b""))  # until the bridge closes it
        assert got == BUSY_MESSAGE and port.refused == 1
        first.sendall(b"$I\n")
        assert "ok" in read_lines(first, 0.4)  # undisturbed
    wait_until(lambda: not port.connected(), what="bridge to notice the first sender leaving")
    with connect(port) as third:
        third.sendall(b"$G\n")
        assert "ok" in read_lines(third, 0.4)


def test_sender_leaving_mid_job_leaves_the_bridge_reporting(grbl_sim, make_bridge, recorder, uid):
    rec = recorder()
    sim = grbl_sim(move_time=0.05)
    m, port = start_cnc(make_bridge, sim, uid)
    rec.wait_state(m, "idle")
    sender = connect(port)
    moves = [b"G1 X%d Y%d F800\n" % (i % 7, i % 5) for i in range(20)]
    program = b"".join(moves)
    sender.sendall(program)
    rec.wait_state(m, "busy")
    sender.close()  # the laptop closes the sender mid-job; the controller finishes its queue
    wait_until(lambda: not port.connected(), what="bridge to notice the sender leaving")
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"])
    assert evs[2].reason == "done"
    rec.wait_state(m, "idle")
    before = sim.status_queries
    wait_until(lambda: sim.status_queries - before >= 3, what="bridge still polling")
    with connect(port) as again:
        assert not [x for x in read_lines(again, 0.8) if x.startswith("<")]
        again.sendall(b"".join(moves[:10]) + b"M2\n")  # long enough for the 5 Hz polling to see Run
        lines = read_lines(again, 1.5)
        assert lines.count("ok") == 11 and "[MSG:Pgm End]" in lines
        assert not [x for x in lines if x.startswith("<")]
    rec.wait_events(m, ["session_started", "job_started", "job_finished", "job_started", "job_finished"])


def _raw(**machine):
    return {"bridge": {"id": "b1", "state_dir": "/tmp/x"},
            "machine": [{"id": "m1", "driver": "grbl", "port": "/dev/ttyUSB0"} | machine]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:2300", ("127.0.0.1", 2300)), ("2300", ("127.0.0.1", 2300)), (2300, ("127.0.0.1", 2300)),
     ("0.0.0.0:23", ("0.0.0.0", 23)), ("[::1]:2300", ("::1", 2300)), ("cnc-pi.local:2300", ("cnc-pi.local", 2300))],
)
def test_passthrough_tcp_addresses(value, expected):
    assert parse_config(_raw(passthrough_tcp=value)).machines[0].passthrough_tcp == expected


@pytest.mark.parametrize(
    ("machine", "message"),
    [
        ({"passthrough_tcp": "localhost"}, 'expected "host:port"'),
        ({"passthrough_tcp": "127.0.0.1:http"}, "port must be 0..65535"),
        ({"passthrough_tcp": "127.0.0.1:70000"}, "port must be 0..65535"),
        ({"passthrough_tcp": 99999}, "port must be 0..65535"),
        ({"passthrough_tcp": "::1:2300"}, "IPv6 address in brackets"),
        ({"passthrough_tcp": "[nope]:2300"}, "not an IPv6 address"),
        ({"passthrough_tcp": "300.1.1.1:2300"}, "not an IPv4 address"),
        ({"passthrough_tcp": "my host:2300"}, "not a host name"),
        ({"passthrough_tcp": True}, "passthrough_tcp: expected str or int, got bool"),
        ({"driver": "octoprint", "passthrough_tcp": "127.0.0.1:2300"}, "only supported for the grbl and marlin"),
        ({"passthrough": "/tmp/ttyCNC", "passthrough_tcp": "127.0.0.1:2300"}, "not both"),
    ],
)
def test_invalid_passthrough_tcp(machine, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(_raw(**machine))
    assert message in str(exc.value)


def test_cli_exit_status_2_on_bad_address_and_port_in_use(tmp_path, capsys, broker):
    cfg = tmp_path / "bridge.toml"
    text = f"""[bridge]
id = "b1"
state_dir = "{tmp_path / 'state'}"
[mqtt]
host = "{broker.host}"
port = {broker.port}
[[machine]]
id = "cnc-1"
driver = "grbl"
port = "{tmp_path / 'no-such-tty'}"
passthrough_tcp = "ADDRESS"
"""
    cfg.write_text(text.replace("ADDRESS", "127.0.0.1:nope"))
    assert main(["--check", str(cfg)]) == 2
    assert "machine 'cnc-1'.passthrough_tcp: port must be 0..65535" in capsys.readouterr().err
    with socket.create_server(("127.0.0.1", 0)) as taken:
        cfg.write_text(text.replace("ADDRESS", f"127.0.0.1:{taken.getsockname()[1]}"))
        assert main(["--check", str(cfg)]) == 0
        capsys.readouterr()
        assert main([str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "machine 'cnc-1': cannot open pass-through 127.0.0.1:" in err and "in use" in err
