"""Frames: every message round-trips, and decode rejects anything else with ProtocolError only."""
from __future__ import annotations

import binascii
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import podproto
from podproto import ProtocolError, codec, messages
from proto_strategies import bit_flip, message_of, messages_any


@pytest.mark.parametrize("entry", messages.TABLE, ids=[e[1] for e in messages.TABLE])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_message_round_trips(entry, data):
    msg = data.draw(message_of(entry))
    frame = podproto.encode(msg)
    assert podproto.decode(frame) == msg
    assert podproto.decode(bytearray(frame)) == msg
    assert podproto.decode(memoryview(frame)) == msg


def test_frame_layout_is_the_documented_one():
    frame = podproto.encode({"type": "set_clock", "id": 7, "flags": messages.FLAG_ACK_REQ,
                             "epoch_s": 0x01020304})
    assert frame[:8] == bytes([1, 0x24, 2, 7, 4, 0, 0, 0])
    assert frame[8:12] == bytes([4, 3, 2, 1])
    assert struct.unpack("<I", frame[12:])[0] == binascii.crc32(frame[:12])


def test_a_command_tag_follows_the_body_and_the_length_counts_the_body_only():
    frame = podproto.encode({"type": "set_clock", "id": 7, "flags": messages.FLAG_MAC,
                             "epoch_s": 0x01020304, "ctr": 0x0A0B0C0D, "tag": bytes(range(12))})
    assert frame[:8] == bytes([1, 0x24, 4, 7, 4, 0, 0, 0])
    assert frame[8:12] == bytes([4, 3, 2, 1])
    assert frame[12:16] == bytes([0x0D, 0x0C, 0x0B, 0x0A]) and frame[16:28] == bytes(range(12))
    assert struct.unpack("<I", frame[28:])[0] == binascii.crc32(frame[:28])
    assert len(frame) == codec.OVERHEAD + 4 + codec.TRAILER_LEN


def test_header_defaults_to_zero():
    msg = podproto.decode(podproto.encode({"type": "status_get"}))
    assert msg == {"type": "status_get", "id": 0, "flags": 0, "credits": 0}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_of_any_bytes_accepts_only_canonical_frames(data):
    try:
        msg = podproto.decode(data)
    except ProtocolError as e:
        assert str(e)
        return
    assert podproto.encode(msg) == data


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_truncations_and_bit_flips_are_rejected(data):
    frame = podproto.encode(data.draw(messages_any()))
    cut = data.draw(st.integers(0, len(frame) - 1))
    with pytest.raises(ProtocolError):
        podproto.decode(frame[:cut])
    flipped = data.draw(bit_flip(frame))
    # CRC-32 catches every single-bit error.
    with pytest.raises(ProtocolError):
        podproto.decode(flipped)
    with pytest.raises(ProtocolError):
        podproto.decode(frame + data.draw(st.binary(min_size=1, max_size=8)))


@pytest.mark.parametrize("junk", [None, 3, "abc", "x" * 40, [1, 2, 3] * 5, object(), b"\x01" * 4])
def test_decode_of_non_bytes_raises_protocol_error(junk):
    with pytest.raises(ProtocolError):
        podproto.decode(junk)


def _frame(code, body, flags=0, version=1):
    head = struct.pack("<BBBBHH", version, code, flags, 0, len(body), 0) + body
    return head + struct.pack("<I", binascii.crc32(head))


@pytest.mark.parametrize("frame, reason", [
    (_frame(0x24, b"\x01\x02\x03\x04", version=2), "version"),
    (_frame(0x7F, b""), "unknown message type"),
    (_frame(0x24, b"\x01\x02\x03\x04", flags=0x80), "reserved flag"),
    (_frame(0x24, b"\x01\x02\x03"), "epoch_s: truncated"),
    (_frame(0x24, b"\x01\x02\x03\x04\x05"), "trailing"),
    (_frame(0x01, b"\x01\x00\x00\x14\x00\x03ab\x07"), "app: not printable"),
    (_frame(0x01, b"\x01\x00\x00\x14\x00\x09ab"), "app: 9 bytes but 2 left"),
    (_frame(0x51, b"\x02" + bytes(19)), r"faults\[1\].raw: truncated"),
    (_frame(0x20, b"")[:-1] + b"\x00", "crc"),
    (_frame(0x24, b"\x01\x02\x03\x04" + bytes(15), flags=4), "length field 19 but 3"),
], ids=["version", "type", "flags", "short", "trailing", "ascii", "strlen", "list", "crc",
        "trailer"])
def test_rejections_name_what_was_wrong(frame, reason):
    with pytest.raises(ProtocolError, match=reason):
        podproto.decode(frame)


@pytest.mark.parametrize("msg, reason", [
    ({"type": "nope"}, "unknown message type"),
    ("hello", "want a dict"),
    ({"type": "set_clock"}, "epoch_s: missing"),
    ({"type": "set_clock", "epoch_s": -1}, "epoch_s: want an int"),
    ({"type": "set_clock", "epoch_s": 2 ** 32}, "epoch_s"),
    ({"type": "set_clock", "epoch_s": 1.5}, "epoch_s"),
    ({"type": "set_clock", "epoch_s": 1, "extra": 1}, "extra: no such field"),
    ({"type": "set_clock", "epoch_s": 1, "id": 256}, "id"),
    ({"type": "set_clock", "epoch_s": 1, "flags": 8}, "flags"),
    ({"type": "set_clock", "epoch_s": 1, "flags": 4}, "ctr: missing"),
    ({"type": "set_clock", "epoch_s": 1, "flags": 4, "ctr": 1, "tag": bytes(11)}, "tag: want"),
    ({"type": "set_clock", "epoch_s": 1, "ctr": 1}, "ctr: no such field"),
    ({"type": "key_confirm", "mac": bytes(31)}, "mac: want exactly 32 bytes"),
    ({"type": "error", "code": 1, "ref_type": 1, "ref_id": 1, "detail": "\u00e9"}, "detail"),
    ({"type": "fault_list", "faults": [{"code": 1}]}, r"faults\[0\].sensor: missing"),
    ({"type": "profile_chunk", "offset": 0, "data": bytes(70000)}, "body"),
])
def test_encode_names_the_bad_field(msg, reason):
    with pytest.raises(ProtocolError, match=reason):
        podproto.encode(msg)


# The keys of a frame's header and of a command's tag trailer (protocol/README.md).
HEADER_KEYS = {"type", "id", "flags", "credits", "ctr", "tag"}


def test_type_codes_and_names_are_unique():
    codes = [e[0] for e in messages.TABLE]
    names = [e[1] for e in messages.TABLE]
    assert len(set(codes)) == len(codes) and len(set(names)) == len(names)
    for _, _, fields in messages.TABLE:
        assert not {f[0] for f in fields} & HEADER_KEYS
        assert all(kind != "Y" for _, kind in fields[:-1])


def test_status_carries_the_podlets_state_and_refusal_within_the_state_characteristic():
    from podproto import gatt
    from podproto.names import PODLET_REASONS, PODLET_STATES
    status = {"type": "status", "id": 0, "flags": messages.FLAG_FROM_DEVICE, "credits": 0,
              "state": 1, "fault": 0, "boiler_mc": 22000, "outlet_mc": 21000,
              "heater_pct": 0, "pump_ul_min": 0, "session_ul": 0, "session_s": 0,
              "podlet_type": 0, "clock_s": 0, "limit_ul": 0, "limit_s": 0,
              "podlet_state": PODLET_STATES.index("refused"),
              "podlet_reason": PODLET_REASONS.index("clock_unset")}
    frame = podproto.encode(status)
    assert podproto.decode(frame) == status
    assert frame[-6:-4] == bytes([3, 7])              # the last two body bytes
    assert len(frame) == gatt.STATE_FRAME_BYTES == gatt.STATE_NOTIFY_MIN_MTU - 3
    assert PODLET_STATES == ("none", "checking", "accepted", "refused")
    # A code is an index: the first ones never move.
    assert PODLET_REASONS[:3] == (None, "other", "unreadable")
