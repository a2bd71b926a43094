"""Credit-based flow control, host to device: one credit is one PDU the device can hold.

The device announces its receive queue in `info.rx_credits`; the host starts with that
many credits, spends one per PDU it writes and gets them back in the `credits` header
field of the device's frames (a bare `credit` frame when the device has nothing else
to say). Invariant, checkable at any moment:

    host.credits + PDUs in flight + device.held + device.owed + credits in flight
        + PDUs lost that the device has not yet seen missing == device.slots
so a fast host can never overrun a slow board, and no credit is created or lost: a
PDU the host's stack dropped shows as a gap in the next PDU's seq (podproto.link), and
the device gives its credit back (RxCredits.lost).
"""
from podproto.errors import ProtocolError


class TxCredits:
    """Host side: may I send another PDU?"""

    def __init__(self, initial):
        if not isinstance(initial, int) or initial < 1 or initial > 0xFFFF:
            raise ProtocolError("credits: want 1..65535 initial credits")
        self.limit = initial
        self.credits = initial

    def spend(self):
        """Take one credit for a PDU about to be written."""
        if self.credits <= 0:
            raise ProtocolError("credits: none left, wait for the device")
        self.credits -= 1

    def grant(self, n):
        """Credits returned by the device (a frame's `credits` field)."""
        if not isinstance(n, int) or n < 0 or self.credits + n > self.limit:
            raise ProtocolError("credits: grant of %r would exceed %d" % (n, self.limit))
        self.credits += n


class RxCredits:
    """Device side: counts the queue slots the host may fill."""

    def __init__(self, slots):
        self.slots = slots
        self.held = 0     # PDUs received and not yet consumed
        self.owed = 0     # consumed, not yet granted back to the host

    def received(self):
        """A PDU arrived; ProtocolError if the host had no credit for it."""
        if self.held + self.owed >= self.slots:
            raise ProtocolError("credits: host overran the receive queue")
        self.held += 1

    def consumed(self):
        """A PDU left the queue (fed to the reassembler): its slot is free again."""
        if self.held <= 0:
            raise ProtocolError("credits: consumed more PDUs than received")
        self.held -= 1
        self.owed += 1

    def lost(self, n):
        """n PDUs the host spent credits on never arrived (a gap in the seq chain: its
        stack dropped writes): their credits go back with the next grant. Never more
        than the host can have out, so a grant never exceeds its limit."""
        room = self.slots - self.held - self.owed
        self.owed += n if n < room else room

    def take_grant(self):
        """Credits to put in the next outgoing frame's header (then no longer owed)."""
        n = self.owed
        self.owed = 0
        return n
