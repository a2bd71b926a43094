"""Per-command tags and the sliced X25519 of podproto.pairing on CPython (the same
decisions on MicroPython: test_proto_micropython's A, T and X vectors, and
mpt_pairing_slices.py for the slices)."""
from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

import podproto
from podproto import codec, gf25519, messages, pairing
from proto_strategies import bit_flip, messages_any

SESSION = pairing.session_pads(bytes(range(32)), bytes(16), bytes(range(16)), bytes(8))


def _command(msg: dict) -> dict:
    msg = {k: v for k, v in msg.items() if k not in ("ctr", "tag")}
    msg["flags"] &= ~messages.FLAG_MAC
    return msg


@settings(max_examples=200, deadline=None)
@given(msg=messages_any(), ctr=st.integers(0, 0xFFFFFFFF), data=st.data())
def test_a_sealed_command_verifies_and_any_changed_bit_does_not(msg, ctr, data):
    frame = pairing.seal(_command(msg), SESSION, ctr)
    got = podproto.decode(frame)
    assert got["ctr"] == ctr and got["flags"] & messages.FLAG_MAC
    assert pairing.tag_ok(SESSION, frame, got)
    # Any bit before the CRC changed, the CRC made good again as a forger would.
    flipped = bytearray(data.draw(bit_flip(frame[:-codec.CRC_LEN])) + bytes(codec.CRC_LEN))
    codec.put_crc(flipped)
    try:
        other = podproto.decode(bytes(flipped))
    except podproto.ProtocolError:
        return
    assert not ("tag" in other and pairing.tag_ok(SESSION, bytes(flipped), other))


def test_a_tag_is_bound_to_the_session_of_the_connection():
    key, dn, hn, hid = os.urandom(32), os.urandom(16), os.urandom(16), os.urandom(8)
    frame = pairing.seal({"type": "session_stop"}, pairing.session_pads(key, dn, hn, hid), 1)
    msg = podproto.decode(frame)
    for other in (pairing.session_pads(key, os.urandom(16), hn, hid),     # next connection
                  pairing.session_pads(key, dn, os.urandom(16), hid),
                  pairing.session_pads(os.urandom(32), dn, hn, hid)):     # another key
        assert not pairing.tag_ok(other, frame, msg)
    assert pairing.tag_ok(pairing.session_pads(key, dn, hn, hid), frame, msg)


def test_x25519_in_slices_agrees_with_cryptography_and_each_slice_is_bounded():
    priv = X25519PrivateKey.generate()
    peer = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    mine = os.urandom(32)
    log: list[int] = []
    got = gf25519.run(pairing.x25519_steps(mine, peer, log=log))
    mine_pub = pairing.x25519(mine, b"\x09" + bytes(31))
    assert got == priv.exchange(X25519PublicKey.from_public_bytes(mine_pub))
    # The ladder's 255 steps, then the inversion's ~265 multiplications.
    ladder = 255 * pairing.LADDER_STEP_MULS
    assert max(log) <= gf25519.SLICE_MULS and ladder < sum(log) < ladder + 300, sum(log)


def test_the_device_side_gives_the_key_the_host_derives():
    host_priv, host_pub = pairing.keypair()
    hn, dn = os.urandom(16), os.urandom(16)
    log: list[int] = []
    dev_pub, key = gf25519.run(pairing.respond_steps(host_pub, hn, dn, log=log))
    assert key == pairing.pair_key(pairing.x25519(host_priv, dev_pub), hn, dn)
    assert max(log) <= gf25519.SLICE_MULS and len(log) > 50


@pytest.mark.parametrize("low_order", [bytes(32), (1).to_bytes(32, "little")])
def test_a_host_key_of_low_order_shares_no_secret_and_is_refused(low_order):
    assert gf25519.run(pairing.respond_steps(low_order, bytes(16), bytes(16))) is None
