"""Credits: a fast host never overruns the device, and no credit is created or lost."""
from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import podproto
from podproto import ProtocolError
from podproto.flow import RxCredits, TxCredits
from podproto.link import Fragmenter, Reassembler


class CreditLink(RuleBasedStateMachine):
    """Host writes PDUs while it has credits; the device consumes them at its own pace
    and grants credits back in the header of frames that may sit in its send queue."""

    def __init__(self):
        super().__init__()
        self.slots = 4
        self.host = TxCredits(self.slots)
        self.device = RxCredits(self.slots)
        self.to_device = []       # PDUs in flight
        self.queue = []           # PDUs the device holds
        self.to_host = []         # frames in flight, each carrying a grant
        self.frag = Fragmenter(20)
        self.reasm = Reassembler()

    @rule()
    def host_writes(self):
        if self.host.credits == 0:
            with pytest.raises(ProtocolError):
                self.host.spend()
            return
        self.host.spend()
        frame = podproto.encode({"type": "status_get"})
        self.to_device.extend(self.frag.split(frame))

    @precondition(lambda self: self.to_device)
    @rule()
    def pdu_arrives(self):
        self.device.received()
        self.queue.append(self.to_device.pop(0))

    @precondition(lambda self: self.queue)
    @rule()
    def device_consumes(self):
        n = self.reasm.feed(self.queue.pop(0))
        self.device.consumed()
        assert n and self.reasm.message(n)["type"] == "status_get"

    @rule()
    def device_sends_frame(self):
        grant = self.device.take_grant()
        self.to_host.append(podproto.encode({"type": "credit", "credits": grant,
                                             "flags": 1}))

    @precondition(lambda self: self.to_host)
    @rule()
    def frame_arrives(self):
        self.host.grant(podproto.decode(self.to_host.pop(0))["credits"])

    @precondition(lambda self: self.device.held + self.device.owed == self.slots)
    @rule()
    def rogue_pdu_is_refused(self):
        # A host that ignores credits is stopped by the device, which stays consistent.
        with pytest.raises(ProtocolError, match="overran"):
            self.device.received()

    @invariant()
    def credits_are_conserved(self):
        in_flight_grants = sum(podproto.decode(f)["credits"] for f in self.to_host)
        assert self.host.credits >= 0 and self.device.held >= 0 and self.device.owed >= 0
        assert (self.host.credits + len(self.to_device) + self.device.held + self.device.owed
                + in_flight_grants) == self.slots


TestCreditLink = CreditLink.TestCase
TestCreditLink.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


def test_grants_beyond_the_limit_are_refused():
    tx = TxCredits(2)
    tx.spend()
    with pytest.raises(ProtocolError, match="exceed"):
        tx.grant(2)
    tx.grant(1)
    assert tx.credits == 2
    with pytest.raises(ProtocolError):
        tx.grant(-1)
    with pytest.raises(ProtocolError):
        TxCredits(0)


def test_device_refuses_a_pdu_without_credit():
    rx = RxCredits(1)
    rx.received()
    with pytest.raises(ProtocolError, match="overran"):
        rx.received()
    rx.consumed()
    with pytest.raises(ProtocolError, match="overran"):
        rx.received()     # the slot is free, but its credit is not yet back with the host
    assert rx.take_grant() == 1
    rx.received()
    rx.consumed()
    with pytest.raises(ProtocolError, match="consumed more"):
        rx.consumed()


def test_credits_of_lost_pdus_come_back_and_never_past_the_limit():
    """A PDU the host's stack dropped (a gap in seq, podproto.link) leaves its credit
    with neither side: RxCredits.lost gives it back, as much as the host can have out."""
    tx, rx = TxCredits(4), RxCredits(4)
    for _ in range(4):
        tx.spend()
    rx.received()                 # one arrived, three dropped on the way
    rx.consumed()
    rx.lost(3)
    tx.grant(rx.take_grant())
    assert tx.credits == 4
    # A gap larger than what can be out (a host that miscounts) grants no more.
    rx.received()
    rx.lost(10)
    assert rx.owed == 3 and rx.held == 1
    rx.consumed()
    assert rx.take_grant() == 4
