"""Fragmentation and reassembly: any chunking reassembles exactly, any damage fails loudly."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import podproto
from podproto import ProtocolError
from podproto.link import (MAX_FRAGMENTS, MAX_PDU, MIN_PDU, PDU_HEADER, Fragmenter,
                           Reassembler, pdu_end)
from proto_strategies import max_pdus, messages_any


def pdus_of(frames, cuts, seq=0):
    """PDUs carrying frames, frame i cut into pieces of the sizes cuts[i] gives."""
    out = []
    for frame, sizes in zip(frames, cuts):
        pieces, at = [], 0
        for size in sizes:
            if at >= len(frame):
                break
            pieces.append(frame[at:at + size])
            at += size
        if at < len(frame):
            pieces.append(frame[at:])
        for i, piece in enumerate(pieces):
            out.append(bytes([seq, i | (0x80 if i == len(pieces) - 1 else 0), len(piece)])
                       + piece)
            seq = (seq + 1) & 0xFF
    return out


def feed_all(r, pdus):
    """(frames delivered, errors raised) for a PDU stream; only ProtocolError may escape."""
    got, errors = [], 0
    for pdu in pdus:
        try:
            n = r.feed(pdu)
        except ProtocolError:
            errors += 1
            continue
        if n:
            got.append(bytes(r.frame(n)))
    return got, errors


def stream():
    return st.lists(messages_any(), min_size=1, max_size=6).map(
        lambda ms: [podproto.encode(m) for m in ms])


@settings(max_examples=200, deadline=None)
@given(frames=stream(), max_pdu=max_pdus())
def test_fragmenter_output_reassembles_exactly(frames, max_pdu):
    f = Fragmenter(max_pdu)
    r = Reassembler(max_frame=1024, max_pdu=max_pdu)
    pdus = [p for fr in frames for p in f.split(fr)]
    assert all(PDU_HEADER < len(p) <= max_pdu for p in pdus)
    got, errors = feed_all(r, pdus)
    assert (got, errors) == (frames, 0)
    assert [podproto.decode(g) for g in got] == [podproto.decode(fr) for fr in frames]


@settings(max_examples=200, deadline=None)
@given(frames=stream(), data=st.data())
def test_any_chunking_reassembles_exactly(frames, data):
    cuts = [data.draw(st.lists(st.integers(1, 60), max_size=MAX_FRAGMENTS - 1)) for _ in frames]
    got, errors = feed_all(Reassembler(), pdus_of(frames, cuts))
    assert (got, errors) == (frames, 0)


def perturb(pdus, ops):
    pdus = list(pdus)
    for op, i in ops:
        i %= len(pdus)
        if op == "drop" and len(pdus) > 1:
            del pdus[i]
        elif op == "dup":
            pdus.insert(i, pdus[i])
        elif op == "swap" and i + 1 < len(pdus) and pdus[i] != pdus[i + 1]:
            pdus[i], pdus[i + 1] = pdus[i + 1], pdus[i]
    return pdus


@settings(max_examples=300, deadline=None)
@given(frames=stream(), max_pdu=st.integers(MIN_PDU, 40), data=st.data())
def test_lost_duplicated_reordered_pdus_fail_loudly_never_merge(frames, max_pdu, data):
    f = Fragmenter(max_pdu)
    pdus = [p for fr in frames for p in f.split(fr)]
    ops = data.draw(st.lists(st.tuples(st.sampled_from(["drop", "dup", "swap"]),
                                       st.integers(0, 10 ** 6)), min_size=1, max_size=3))
    damaged = perturb(pdus, ops)
    # A final intact frame exposes damage at the tail (a lost last PDU shows up as a gap).
    tail = podproto.encode({"type": "status_get", "id": 255})
    r = Reassembler()
    got, errors = feed_all(r, damaged + f.split(tail))
    expected = frames + [tail]
    # Every delivered frame is one that was sent, in order: never a merge of two.
    it = iter(expected)
    assert all(any(g == e for e in it) for g in got)
    if damaged != pdus:
        # Damage is reported, or (PDUs lost just before a frame's first) counted.
        assert errors >= 1 or r.lost >= 1
    else:
        assert (got, errors) == (expected, 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=30))
def test_arbitrary_pdus_raise_only_protocol_error(pdus):
    r = Reassembler(max_frame=128, max_pdu=40)
    for pdu in pdus:
        try:
            n = r.feed(pdu)
        except ProtocolError as e:
            assert str(e)
            continue
        if n:
            try:
                r.message(n)
            except ProtocolError:
                pass


@pytest.mark.parametrize("junk", [None, 5, "ab\x00\x80c", [0, 0x80, 300], object()])
def test_non_bytes_pdus_raise_protocol_error(junk):
    with pytest.raises(ProtocolError):
        Reassembler().feed(junk)


def test_rejections_name_what_was_wrong():
    r = Reassembler(max_frame=30, max_pdu=24)
    with pytest.raises(ProtocolError, match="pdu: 3 bytes"):
        r.feed(b"\x00\x80\x00")
    with pytest.raises(ProtocolError, match="pdu: 25 bytes"):
        r.feed(bytes(25))
    r.reset()
    with pytest.raises(ProtocolError, match="length 6, 5 bytes follow"):
        r.feed(b"\x00\x80\x06" + bytes(5))
    r.reset()
    assert r.feed(b"\x00\x00\x14" + bytes(20)) == 0
    with pytest.raises(ProtocolError, match="seq 2, expected 1"):
        r.feed(b"\x02\x81\x05" + bytes(5))
    r.reset()
    r.feed(b"\x00\x00\x14" + bytes(20))
    with pytest.raises(ProtocolError, match="fragment 2, expected 1"):
        r.feed(b"\x01\x82\x05" + bytes(5))
    r.reset()
    r.feed(b"\x00\x00\x14" + bytes(20))
    with pytest.raises(ProtocolError, match="exceeds 30 bytes"):
        r.feed(b"\x01\x81\x14" + bytes(20))


def test_after_an_error_the_rest_of_the_broken_frame_is_dropped_and_the_next_one_delivered():
    f = Fragmenter(MIN_PDU)
    a, b = (podproto.encode({"type": "hello", "proto": 1, "caps": 0, "max_pdu": 20,
                             "app": "x" * 40}) for _ in range(2))
    pa, pb = f.split(a), f.split(b)
    r = Reassembler()
    got, errors = feed_all(r, [pa[0]] + pa[2:] + pb)
    assert (got, errors) == ([b], 1)
    assert r.dropped == len(pa) - 3


@settings(max_examples=200, deadline=None)
@given(frames=stream(), max_pdu=max_pdus(), data=st.data())
def test_pdus_appended_into_one_buffer_split_back_by_their_lengths(frames, max_pdu, data):
    """A characteristic in append mode read late holds several writes back to back:
    pdu_end() finds each one, and the frames reassemble as if read one by one."""
    pdus = [p for fr in frames for p in Fragmenter(max_pdu).split(fr)]
    got, at = [], 0
    while at < len(pdus):
        n = data.draw(st.integers(1, 5))
        buf = b"".join(pdus[at:at + n])
        start = 0
        while start < len(buf):
            end = pdu_end(buf, start, len(buf))
            assert end > start
            got.append(buf[start:end])
            start = end
        at += n
    assert got == pdus
    # A buffer cut inside a PDU, or a zero length, leaves nothing to split by.
    whole = pdus[0]
    assert pdu_end(whole[:-1], 0, len(whole) - 1) == -1
    assert pdu_end(whole[:2], 0, 2) == -1
    assert pdu_end(whole[:2] + b"\x00" + whole[3:], 0, len(whole)) == -1


def test_fragmenter_limits():
    with pytest.raises(ProtocolError, match="max_pdu"):
        Fragmenter(MIN_PDU - 1)
    with pytest.raises(ProtocolError, match="max_pdu"):
        Fragmenter(MAX_PDU + 1)
    assert all(p[2] == 255 for p in Fragmenter(MAX_PDU).split(bytes(600))[:-1])
    f = Fragmenter(MIN_PDU)
    with pytest.raises(ProtocolError, match="does not fit"):
        f.split(bytes((MIN_PDU - PDU_HEADER) * MAX_FRAGMENTS + 1))
    assert len(f.split(bytes((MIN_PDU - PDU_HEADER) * MAX_FRAGMENTS))) == MAX_FRAGMENTS


_ALLOC_SCRIPT = r"""
import gc, micropython
import podproto
from podproto.link import Fragmenter, Reassembler
f = Fragmenter(%(pdu)d)
frames = [podproto.encode({"type": "profile_chunk", "offset": i, "data": bytes(200)})
          for i in range(8)]
pdus = []
for fr in frames:
    pdus.extend(f.split(fr))
r = Reassembler(max_pdu=%(pdu)d)
locked_fail = 0
done = 0
for p in pdus:
    micropython.heap_lock()
    try:
        n = r.feed(p)
    except MemoryError:
        n = 0
        locked_fail += 1
    micropython.heap_unlock()
    if n:
        done += 1
        assert r.message(n)["type"] == "profile_chunk"
print(len(pdus), done, locked_fail)
"""


@pytest.mark.parametrize("pdu", [20, 244])
def test_device_receive_path_allocates_nothing_per_pdu(micropython, tmp_path, pdu):
    script = tmp_path / "alloc.py"
    script.write_text(_ALLOC_SCRIPT % {"pdu": pdu})
    n_pdus, done, fails = map(int, micropython(script).split())
    assert done == 8 and n_pdus >= 8
    assert fails == 0, "Reassembler.feed allocated under heap_lock"


def test_pdus_lost_before_a_frame_cost_only_their_own_frame():
    """Writes the host's stack dropped (CoreBluetooth drops writes without response when
    its queue is full): the next frame starts at a seq ahead. It is taken, the PDUs
    missing are counted in `lost` (the device gives their credits back), and a frame
    they cut short is dropped, never merged."""
    f = Fragmenter(20)
    a, b, c = (podproto.encode({"type": "status_get", "id": i}) for i in (1, 2, 3))
    long = podproto.encode({"type": "profile_chunk", "id": 4, "offset": 0, "data": bytes(40)})
    pa, pb, pc, pl = f.split(a), f.split(b), f.split(c), f.split(long)
    assert len(pa) == len(pb) == len(pc) == 1 and len(pl) > 1
    r = Reassembler()
    # b lost whole: a and c arrive, one PDU counted lost, no error.
    got, errors = feed_all(r, pa + pc)
    assert (got, errors, r.lost) == ([a, c], 0, 1)
    # The long frame's tail lost: it is dropped (counted in errors, nothing raised, so
    # the next frame's first PDU is not lost with it) and the next frame is taken.
    r.lost = 0
    before = r.errors
    d = podproto.encode({"type": "status_get", "id": 5})
    got, errors = feed_all(r, pl[:1] + f.split(d))
    assert (got, errors, r.errors - before, r.lost) == ([d], 0, 1, len(pl) - 1)
    # A PDU that is not a frame's first after a gap, or a seq gone back, is an error.
    r.lost = 0
    e1 = f.split(long)
    got, errors = feed_all(r, e1[1:])
    assert got == [] and errors >= 1 and r.lost == 1
    dup = Fragmenter(20).split(a)       # seq 0, then seq 0 again
    r2 = Reassembler()
    assert feed_all(r2, dup + dup) == ([a], 1) and r2.lost == 0
