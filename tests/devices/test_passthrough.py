import os

import serial

from devices.passthrough import GrblStatusFilter, PtyPort

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
