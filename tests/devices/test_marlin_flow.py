"""MarlinFlow: one Marlin line shared by the bridge and a sender (pure bookkeeping)."""

from devices.marlin import MarlinLineEncoder, parse_numbered
from devices.marlin_flow import MarlinFlow


def started():
    flow = MarlinFlow()
    flow.reset(0.0)
    assert flow.from_printer("ok", 0.0) == ([], [])  # the bridge's M110: not the sender's
    return flow


def test_sender_lines_are_renumbered_and_only_its_replies_reach_it():
    flow = started()
    sender = MarlinLineEncoder()
    assert flow.from_sender(sender.reset().strip()) == "ok\n"  # its M110 is answered here
    flow.bridge_queue.append("M105")
    assert flow.from_sender(sender.encode("G28").strip()) == ""
    assert flow.from_sender(sender.encode("G1 X5").strip()) == ""
    (ours,) = flow.next_lines(0.0)
    assert parse_numbered(ours) == (1, "M105", True)
    assert flow.next_lines(0.0) == []  # one line in flight at a time
    assert flow.from_printer("ok T:20 /0 B:20 /0", 0.0) == ([], [])  # our reply, withheld
    (line,) = flow.next_lines(0.0)
    assert parse_numbered(line) == (2, "G28", True)
    assert flow.from_printer("echo:busy: processing", 0.0) == (["echo:busy: processing"], [])
    assert flow.from_printer("ok", 0.0) == (["ok"], [])
    (line,) = flow.next_lines(0.0)
    assert parse_numbered(line) == (3, "G1 X5", True)


def test_printer_resend_is_answered_by_the_bridge_and_its_ok_acks_nothing():
    flow = started()
    flow.from_sender("G1 X1")
    (line,) = flow.next_lines(0.0)
    assert flow.from_printer("Error: Missing checksum", 0.0) == ([], [])  # held: a Resend may follow
    assert flow.from_printer("Resend: 1", 0.0) == ([], [line])
    assert flow.from_printer("ok", 0.0) == ([], [])  # completes the refusal
    flow.from_sender("G1 X2")
    assert flow.next_lines(0.0) == []  # still waiting for the re-sent line's own ok
    assert flow.from_printer("ok", 0.0) == (["ok"], [])
    assert parse_numbered(flow.next_lines(0.0)[0]) == (2, "G1 X2", True)


def test_resend_of_an_unknown_line_renumbers_from_zero():
    flow = started()
    flow.from_sender("G1 X1")
    flow.next_lines(0.0)
    _, write = flow.from_printer("Resend: 7", 0.0)
    assert [parse_numbered(x)[:2] for x in write] == [(0, "M110 N0"), (1, "G1 X1")]
    flow.from_printer("ok", 0.0)  # the refusal's
    assert flow.from_printer("ok", 0.0) == ([], [])  # M110's, ours
    assert flow.from_printer("ok", 0.0) == (["ok"], [])  # the sender's line


def test_sender_mistakes_are_answered_as_the_printer_would():
    flow = started()
    assert flow.from_sender("N1 G28*0") .startswith("Error:checksum mismatch, Last Line: 0\nResend: 1\nok")
    assert flow.from_sender("N5 G28*" + str(_cs("N5 G28"))).startswith("Error:Line Number is not")
    assert flow.from_sender("; only a comment") == ""
    assert flow.from_sender("M112") == "" and flow.urgent  # not held behind the line in flight
    flow.from_sender("G1 X1")
    flow.next_lines(0.0)
    flow.sender_gone()
    assert flow.from_printer("ok", 0.0) == ([], [])  # the departed sender's reply goes nowhere


def test_halts_reach_the_sender_even_during_a_bridge_query():
    flow = started()
    flow.bridge_queue.append("M27")
    flow.next_lines(0.0)
    assert flow.from_printer("Error:Printer halted. kill() called!", 0.0)[0] == [
        "Error:Printer halted. kill() called!"]


def _cs(body):
    from devices.marlin import checksum

    return checksum(body)
