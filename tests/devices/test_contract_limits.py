"""The contract's bounds hold on both sides: encode refuses what decode would refuse."""

from __future__ import annotations

import math

import pytest

from devices import events as ev


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_encode_refuses_non_finite_numbers(value: float) -> None:
    with pytest.raises(ev.ContractError, match="non-finite"):
        ev.encode(ev.Telemetry(machine="m1", src="b1", readings={"hotend_c": value}))
    with pytest.raises(ev.ContractError, match="non-finite"):
        ev.encode(ev.MachineEvent(machine="m1", src="b1", type="error", session_id=None, seq=1, energy_wh=value))


@pytest.mark.parametrize("msg", [
    ev.MachineStatus(machine="m1", src="b1", state="printing", job=ev.JobInfo(file="x" * 256)),
    ev.AuthRequest(machine="m1", src="b1", badge=ev.Badge(tech="em4100", uid="A" * 65)),
    ev.MachineEvent(machine="m1", src="b1", type="error", session_id=None, seq=1, reason="r" * 501),
    ev.MachineEvent(machine="m1", src="b1", type="session_started", session_id="s" * 129, seq=1),
    ev.MachineEvent(machine="m1", src="b1", type="error", session_id=None, seq=1, detail={"x": "y" * 5000}),
    ev.MachineStatus(machine="m1", src="b1", state="idle", fw=ev.FirmwareInfo(name="f" * 101)),
    ev.Telemetry(machine="m1", src="b1", readings={f"r{i}": 1 for i in range(65)}),
    ev.Telemetry(machine="m1", src="b1", readings={"note": "n" * 256}),
    ev.MachineEvent(machine="m1", src="b1", type="error", session_id=None, seq=2**63),
    ev.MachineEvent(machine="m1", src="b1", type="error", session_id=None, seq=1, reason="nul\x00"),
    ev.MachineStatus(machine="m1", src="bad src with spaces", state="idle"),
], ids=["job.file", "badge.uid", "reason", "session_id", "detail", "fw.name", "readings", "reading.text", "int64",
        "nul", "src"])
def test_encode_refuses_oversized_or_unstorable_fields(msg: ev.Message) -> None:
    with pytest.raises(ev.ContractError):
        ev.encode(msg)


def test_fields_at_their_limits_pass_both_ways() -> None:
    msg = ev.MachineStatus(machine="m1", src="b1", state="printing", job=ev.JobInfo(file="x" * 255, progress=0.5))
    assert ev.decode(msg.topic(), ev.encode(msg)) == msg


def test_decode_bounds_size_and_depth_before_parsing() -> None:
    with pytest.raises(ev.ContractError, match="larger than"):
        ev.load_json(b" " * (ev.MAX_PAYLOAD + 1))
    with pytest.raises(ev.ContractError, match="nested deeper"):
        ev.load_json(b"[" * 10_000 + b"]" * 10_000)
    # brackets inside strings are not nesting
    assert ev.load_json(b'{"a": "' + b"[" * 100 + b'"}') == {"a": "[" * 100}
    with pytest.raises(ev.ContractError, match="not decodable"):
        ev.load_json(b'{"a": ' + b"1" * 5000 + b"}")
    with pytest.raises(ev.ContractError, match="non-finite"):
        ev.load_json(b'{"a": NaN}')
    assert math.isnan(ev.load_json(b'{"a": NaN}', allow_nonfinite=True)["a"])
