"""The limits machine's Device (steamer_harness.limits_machine): one micropython process
for many sequences, started again when its own long run, not the firmware, runs the heap
out. CI found the failure this covers: after hundreds of sequences and their power cuts
in one interpreter, a reset's boot could not find a 4 KB block (the ledger's table),
hypothesis replayed the sequence, the replay failed elsewhere, and the test failed as
FlakyStrategyDefinition. A real boot starts in fresh RAM, which the restart gives."""
from __future__ import annotations

import pytest

from steamer_harness import limits_machine
from steamer_harness.limits_machine import DriverError


@pytest.fixture
def device():
    dev = limits_machine.Device()
    yield dev
    dev.close()


def _sequence(dev):
    dev.call("reset", 1000)
    dev.call("set_clock", 0)
    dev.call("install", 0)
    dev.call("insert", 0)
    dev.call("start", None)
    dev.call("advance", 100)
    cut = dev.call("cut", [2, "advance", 300])       # the power fails at a flash write
    assert cut.get("cut") and ["session_ended", "power_loss"] in cut["events"], cut
    dev.call("advance", 1300)                        # past the profile's 120 s interval
    dev.call("start", None)
    return dev.call("advance", 200)


def test_a_replayed_sequence_gives_the_same_replies(device):
    """What the restart relies on: the driver is deterministic, so a new interpreter that
    replays a sequence's ops (a session, a power cut at a flash write) ends where the
    first one did, to the nanolitre and the millisecond."""
    last = _sequence(device)
    assert last["doses"] and last["now_ms"] > 0, last
    again = device.restart()
    assert again == last
    assert device.restarts == 1


def test_a_heap_run_out_by_earlier_sequences_restarts_the_interpreter(device):
    _sequence(device)
    held = device.call("hold_heap", 8192)            # what fragments would leave
    assert held["free"] < 16384
    reply = device.call("reset", 1000)               # a new sequence: restarted, replayed
    assert device.restarts == 1 and reply["ok"]
    assert _sequence(device)["doses"]


def test_a_heap_run_out_in_a_fresh_interpreter_is_the_firmwares():
    """No restart hides a boot that does not fit: in a process that has run nothing
    else, a MemoryError is reported."""
    dev = limits_machine.Device()
    try:
        dev.call("hold_heap", 8192)
        with pytest.raises(DriverError, match="MemoryError"):
            dev.call("reset", 1000)
        assert dev.restarts == 0
    finally:
        dev.close()
