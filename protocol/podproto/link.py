"""Fragmentation of frames into PDUs of the negotiated size, and reassembly.

A PDU is one characteristic write or notification:

    offset 0  u8  seq: link-wide PDU counter, +1 per PDU (mod 256) in each direction
           1  u8  bit 7: last fragment of its frame; bits 0-6: fragment index 0..127
           2  u8  length of the piece that follows, 1..255
           3  ... the next piece of the frame
The length lets a receiver split writes its stack appended into one buffer (a
characteristic in append mode, read late by a scheduled IRQ handler): pdu_end().

`max_pdu` is the link's payload size: on the host bleak's
`max_write_without_response_size` (never `mtu_size`), on the device the ATT MTU - 3.
Any lost, duplicated or reordered PDU breaks the seq chain or the fragment index and
is reported with ProtocolError; the partial frame is dropped, never merged. One case is
taken without an error: PDUs missing just before a frame's first PDU (a seq up to
MAX_GAP ahead, fragment index 0), as when the host's stack drops writes without
response (CoreBluetooth does when its queue is full). The frame they belonged to is
gone (a partial one is dropped and counted in `errors`), the new frame is taken, and
`lost` counts the PDUs missing, so that the device can give their credits back.
"""
from podproto.mpconst import const

from podproto.errors import ProtocolError

PDU_HEADER = const(3)
MIN_PDU = const(20)        # ATT_MTU 23 - 3: every BLE link carries this much
MAX_PDU = const(258)       # the header and the most a u8 length counts
MAX_FRAGMENTS = const(128)
MAX_FRAME = const(1024)    # the device's reassembly buffer, announced in `info`
MAX_GAP = const(127)       # a seq this far ahead is PDUs lost; further, one gone back
_LAST = const(0x80)
_INDEX = const(0x7F)
_DISCARD = const(-1)       # after an error: drop fragments until a frame starts


class Fragmenter:
    """Splits frames into PDUs; one per direction per connection (it owns seq)."""

    def __init__(self, max_pdu):
        if not isinstance(max_pdu, int) or max_pdu < MIN_PDU or max_pdu > MAX_PDU:
            raise ProtocolError("max_pdu: want %d..%d" % (MIN_PDU, MAX_PDU))
        self.max_pdu = max_pdu
        self.seq = 0

    def count(self, frame_len):
        """How many PDUs a frame of frame_len bytes takes."""
        room = self.max_pdu - PDU_HEADER
        return max(1, (frame_len + room - 1) // room)

    def split(self, frame):
        """The PDUs (a list of bytes) carrying frame, in sending order."""
        n = len(frame)
        room = self.max_pdu - PDU_HEADER
        count = self.count(n)
        if n == 0 or count > MAX_FRAGMENTS:
            raise ProtocolError("frame: %d bytes does not fit %d PDUs of %d" %
                                (n, MAX_FRAGMENTS, self.max_pdu))
        out = []
        for i in range(count):
            piece = frame[i * room:(i + 1) * room]
            pdu = bytearray(PDU_HEADER + len(piece))
            pdu[0] = self.seq
            pdu[1] = i | (_LAST if i == count - 1 else 0)
            pdu[2] = len(piece)
            pdu[PDU_HEADER:] = piece
            out.append(bytes(pdu))
            self.seq = (self.seq + 1) & 0xFF
        return out


class Reassembler:
    """Collects PDUs into frames in one preallocated buffer.

    feed(pdu) returns 0 while a frame is incomplete and its length n when complete;
    the frame is then self.buf[PDU_HEADER:PDU_HEADER + n] (message() decodes it) until
    the next feed. feed allocates nothing: the buffer keeps PDU_HEADER bytes of headroom
    so that a whole PDU can be copied in place and the bytes it overwrites put back.
    """

    def __init__(self, max_frame=MAX_FRAME, max_pdu=MAX_PDU):
        self.max_frame = max_frame
        self.max_pdu = max_pdu
        self.buf = bytearray(max_frame + PDU_HEADER)
        self.seq = 0          # seq the next PDU must carry
        self.index = 0        # fragment index the next PDU must carry, or _DISCARD
        self.fill = 0         # frame bytes collected so far
        self.frames = 0
        self.errors = 0
        self.dropped = 0      # fragments dropped quietly after a reported error
        self.lost = 0         # PDUs missing from the seq chain (gaps of up to MAX_GAP)

    def reset(self):
        """Start over, as on a new connection."""
        self.seq = 0
        self.index = 0
        self.fill = 0
        self.lost = 0

    def feed(self, pdu):
        """0, or the length of the frame this PDU completes; ProtocolError if it is bad."""
        try:
            return self._feed(pdu)
        except ProtocolError:
            raise
        except MemoryError:  # the heap, not the input
            raise
        except Exception as e:  # not a bytes-like PDU
            self.index = _DISCARD
            self.fill = 0
            self.errors += 1
            raise ProtocolError("pdu: malformed (%s)" % type(e).__name__)

    def _feed(self, pdu):
        n = len(pdu)
        if n <= PDU_HEADER or n > self.max_pdu:
            # Its seq, if it has one, is spent: the next PDU is judged on its own.
            return self._fail("pdu: %d bytes, want %d..%d" % (n, PDU_HEADER + 1, self.max_pdu),
                              pdu[0] if n else -1)
        seq = pdu[0]
        ctl = pdu[1]
        if pdu[2] != n - PDU_HEADER:
            return self._fail("pdu: length %d, %d bytes follow" % (pdu[2], n - PDU_HEADER), seq)
        if seq != self.seq:
            gap = (seq - self.seq) & 0xFF
            if gap > MAX_GAP:
                # A seq gone back (a duplicate, or reordered): the chain stays where it
                # was, so what comes after it is not taken twice.
                return self._fail("pdu: seq %d, expected %d (PDU duplicated or reordered)"
                                  % (seq, self.seq), -1)
            self.lost += gap
            if ctl & _INDEX:
                return self._fail("pdu: seq %d, expected %d (PDU lost)" % (seq, self.seq),
                                  seq)
            # PDUs lost before this frame's first: take it; a frame they cut is gone.
            if self.index > 0:
                self.errors += 1
            self.index = 0
            self.fill = 0
        self.seq = (seq + 1) & 0xFF
        index = ctl & _INDEX
        if self.index == _DISCARD:
            if index != 0:
                self.dropped += 1
                return 0
            self.index = 0
        if index != self.index:
            return self._fail("pdu: fragment %d, expected %d" % (index, self.index), seq)
        fill = self.fill
        if index == 0:
            fill = 0
        size = n - PDU_HEADER
        if fill + size > self.max_frame:
            return self._fail("pdu: frame exceeds %d bytes" % self.max_frame, seq, "too_large")
        buf = self.buf
        # Copy the whole PDU at fill (its header lands on the bytes before it), then
        # restore those bytes: no slice of pdu is ever made.
        keep0 = buf[fill]
        keep1 = buf[fill + 1]
        keep2 = buf[fill + 2]
        buf[fill:fill + n] = pdu
        buf[fill] = keep0
        buf[fill + 1] = keep1
        buf[fill + 2] = keep2
        fill += size
        if ctl & _LAST:
            self.fill = 0
            self.index = 0
            self.frames += 1
            return fill
        self.fill = fill
        self.index = index + 1
        return 0

    def _fail(self, reason, seq, code="malformed"):
        self.errors += 1
        self.fill = 0
        self.index = _DISCARD
        if seq >= 0:
            self.seq = (seq + 1) & 0xFF
        raise ProtocolError(reason, code)

    def frame(self, n):
        """The complete frame feed() reported, as a memoryview (allocates one)."""
        return memoryview(self.buf)[PDU_HEADER:PDU_HEADER + n]

    def message(self, n):
        """The message of the complete frame feed() reported."""
        from podproto.codec import decode_from
        return decode_from(self.buf, PDU_HEADER, PDU_HEADER + n)


def pdu_end(data, start, end):
    """Where the PDU that starts at data[start] ends, data[start:end] holding one or more
    PDUs back to back; -1 when its header is cut short, its length is 0 or it runs past
    end (the rest cannot be split: the receiver hands it on whole, to be refused)."""
    if end - start < PDU_HEADER + 1 or data[start + 2] == 0:
        return -1
    stop = start + PDU_HEADER + data[start + 2]
    return stop if stop <= end else -1
