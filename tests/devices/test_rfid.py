from devices.rfid import BadgeScan, Rdm6300Parser, WedgeReader, rdm6300_frame


def test_frame_layout():
    frame = rdm6300_frame("0A1B2C3D4E")
    assert frame[0] == 0x02 and frame[-1] == 0x03 and len(frame) == 14
    assert frame[11:13] == f"{0x0A ^ 0x1B ^ 0x2C ^ 0x3D ^ 0x4E:02X}".encode()


def test_parser_verifies_checksum_resyncs_and_debounces():
    p = Rdm6300Parser(debounce_s=1.0)
    good = rdm6300_frame("0A1B2C3D4E")
    corrupt = good[:5] + b"F" + good[6:]
    assert p.feed(corrupt, 0.0) == [] and p.bad_frames == 1
    assert p.feed(b"\x00\xffnoise" + good[:6], 0.1) == []  # partial frame after garbage
    assert p.feed(good[6:], 0.2) == [BadgeScan("em4100", "0A1B2C3D4E")]
    # held card: repeats every 0.3 s stay suppressed, even past the debounce time in total
    for i in range(1, 10):
        assert p.feed(good, 0.2 + 0.3 * i) == []
    assert p.feed(good, 10.0) == [BadgeScan("em4100", "0A1B2C3D4E")]
    other = rdm6300_frame("0011223344")
    assert p.feed(other + good, 10.1) == [BadgeScan("em4100", "0011223344")]
    assert p.feed(b"\x02" + b"Z" * 12 + b"\x03", 20.0) == [] and p.bad_frames == 2


def test_wedge_reader():
    w = WedgeReader(debounce_s=2)
    assert w.feed_line("0004711234\n", 0) == BadgeScan("wedge", "0004711234")
    assert w.feed_line("0004711234\n", 1) is None
    assert w.feed_line("  \n", 5) is None and w.feed_line("bad uid!", 5) is None
    assert w.feed_line("0004711234", 10) is not None
