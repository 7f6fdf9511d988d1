import os
import select
import socket
import time

import pytest
import serial

from devices.passthrough import BUSY_MESSAGE, GrblStatusFilter, PtyPort, TcpPort

STATUS = b"<Idle|MPos:0.000,0.000,0.000|FS:0,0>\r\n"


def test_injected_replies_are_withheld_from_the_sender():
    f = GrblStatusFilter()
    assert f.inject_query(0.0) == b"?"
    to_sender, lines = f.from_controller(STATUS, 0.1)
    assert to_sender == b"" and lines == [STATUS.decode().strip()]
    # the sender's own queries, interleaved with ours, still get exactly their replies
    assert f.from_sender(b"G1 X1?\n?") == b"G1 X1?\n?"
    f.inject_query(0.2)
    to_sender, lines = f.from_controller(b"ok\r\n" + STATUS + STATUS[:10], 0.3)
    assert to_sender == b"ok\r\n" + STATUS and len(lines) == 2
    to_sender, _ = f.from_controller(STATUS[10:] + STATUS, 0.3)
    assert to_sender == STATUS and f.sender_pending == 0 and f.injected_pending == 0
    assert f.dropped == 2
    # unsolicited status lines pass through
    assert f.from_controller(STATUS, 0.4)[0] == STATUS


def test_lost_injected_queries_expire():
    f = GrblStatusFilter(expire_s=1.0)
    f.inject_query(0.0)
    assert f.from_controller(STATUS, 5.0)[0] == STATUS


def test_pty_port_round_trip_and_unplug(tmp_path):
    port = PtyPort(str(tmp_path / "ttyGRBL"))
    port.open()
    assert os.path.islink(port.path) and not port.connected()
    with serial.Serial(port.path, 115200, timeout=0.5) as client:
        assert port.connected()
        client.write(b"$I\n")
        assert port.read(1.0) == b"$I\n"
        assert port.write(b"ok\r\n")
        assert client.readline() == b"ok\r\n"
    assert not port.connected()
    port.close()
    assert not os.path.exists(tmp_path / "ttyGRBL")


def _serve(port, ready_fds=None, seconds=1.0, until=None):
    """Drive ``port.service`` like the bridge's loop until ``until()`` holds; returns the bytes read."""
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select(port.fds(), [], [], 0.02)
        got += port.service(ready)
        if until and until(got):
            break
    return got


def test_sender_gone_forgets_its_unanswered_queries():
    f = GrblStatusFilter()
    f.from_sender(b"??")
    f.sender_gone()
    f.inject_query(0.0)
    assert f.from_controller(STATUS, 0.1)[0] == b""  # our reply, not the departed sender's


def test_tcp_port_one_sender_at_a_time():
    port = TcpPort("127.0.0.1", 0)
    port.open()
    host, number = port.address
    assert host == "127.0.0.1" and number > 0 and not port.connected()
    try:
        with socket.create_connection(port.address, timeout=2) as first:
            _serve(port, until=lambda _: port.connected())
            assert port.connected()
            first.sendall(b"G1 X1\n?")
            assert _serve(port, until=lambda got: got.endswith(b"?")) == b"G1 X1\n?"
            assert port.write(b"ok\r\n")
            assert first.recv(100) == b"ok\r\n"
            # a second sender is told why and closed; the first keeps the port
            with socket.create_connection(port.address, timeout=2) as second:
                _serve(port, until=lambda _: port.refused)
                second_got = b"".join(iter(lambda: second.recv(100), b""))
            assert second_got == BUSY_MESSAGE and port.refused == 1 and port.connected()
            first.sendall(b"$I\n")
            assert _serve(port, until=lambda got: got == b"$I\n") == b"$I\n"
        # the first disconnects: noticed, and the next sender is accepted
        _serve(port, until=lambda _: not port.connected())
        assert not port.connected() and not port.write(b"ok\r\n")
        with socket.create_connection(port.address, timeout=2) as third:
            _serve(port, until=lambda _: port.connected())
            assert port.write(b"ok\r\n") and third.recv(100) == b"ok\r\n"
            port.disconnect("controller lost")
            assert third.recv(100) == b""  # the sender sees the connection close
    finally:
        port.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", number), timeout=1)


def test_tcp_port_drops_a_sender_that_stops_reading():
    port = TcpPort("127.0.0.1", 0)
    port.open()
    try:
        with socket.create_connection(port.address, timeout=2) as sender:
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            _serve(port, until=lambda _: port.connected())
            chunk = b"<Idle|MPos:0.000,0.000,0.000|FS:0,0>\r\n" * 1000
            results = [port.write(chunk, timeout=0.05) for _ in range(200) if port.connected()]
            assert results[-1] is False and not port.connected()  # never half a stream
    finally:
        port.close()
