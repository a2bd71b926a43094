"""The same behaviour on MicroPython: hypothesis-made vectors replayed on the unix port must
give byte-identical encodings and the same accept / reject decisions as on CPython."""
from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import podproto
from podproto import codec, link, logevents, messages, pairing, podlet, profile, signing
from proto_replay import replay_line
from proto_strategies import (bit_flip, journal_records, max_pdus, messages_any, podlets,
                              profiles)

HERE = Path(__file__).resolve().parent
MIN_VECTORS = 10_000
KEY = bytes(range(32))
PUB = signing.public_key(KEY)


def _json(v):
    if isinstance(v, (bytes, bytearray)):
        return {"$b": bytes(v).hex()}
    if isinstance(v, dict):
        return {k: _json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json(x) for x in v]
    return v


def _collect(strategy, n, sink):
    """Runs hypothesis's generator n times, appending each example's vector lines to sink."""
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])
    @given(strategy)
    def run(lines):
        sink.extend(lines)
    run()


def _bad_value():
    return st.one_of(st.integers(-2 ** 40, 2 ** 40), st.text(max_size=4), st.binary(max_size=40),
                     st.none(), st.sampled_from([1.5, -0.25]), st.lists(st.integers(), max_size=2))


@st.composite
def message_vectors(draw):
    msg = draw(messages_any())
    frame = podproto.encode(msg)
    lines = ["M " + json.dumps(_json(msg)), "D " + frame.hex(),
             "D " + frame[:draw(st.integers(0, len(frame) - 1))].hex(),
             "D " + draw(bit_flip(frame)).hex()]
    # An invalid message: one field replaced by something of the wrong type or range.
    key = draw(st.sampled_from(sorted(msg)))
    lines.append("M " + json.dumps(_json(dict(msg, **{key: draw(_bad_value())}))))
    return lines


@st.composite
def junk_vectors(draw):
    data = draw(st.one_of(st.binary(max_size=64), st.binary(min_size=12, max_size=40).map(
        lambda b: bytes([1]) + b[1:])))
    return ["D " + data.hex(), "P " + data.hex(), "G " + data.hex()]


@st.composite
def pdu_vectors(draw):
    frames = [podproto.encode(m) for m in draw(st.lists(messages_any(), min_size=1, max_size=4))]
    f = link.Fragmenter(draw(max_pdus()))
    pdus = [p for fr in frames for p in f.split(fr)]
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, len(pdus) - 1))
        op = draw(st.sampled_from(["drop", "dup", "swap", "flip"]))
        if op == "drop" and len(pdus) > 1:
            del pdus[i]
        elif op == "dup":
            pdus.insert(i, pdus[i])
        elif op == "swap" and i + 1 < len(pdus):
            pdus[i], pdus[i + 1] = pdus[i + 1], pdus[i]
        elif op == "flip":
            pdus[i] = draw(bit_flip(pdus[i]))
    return ["R " + ",".join(p.hex() for p in pdus)] + ["D " + fr.hex() for fr in frames]


@st.composite
def profile_vectors(draw):
    p = draw(profiles())
    raw = profile.encode(p)
    out_of_envelope = dict(p, session_s=draw(st.integers(3601, 2 ** 32 - 1)))
    return ["P " + raw.hex(), "P " + draw(bit_flip(raw)).hex(),
            "P " + raw[:draw(st.integers(0, len(raw) - 1))].hex(),
            "P " + profile.encode(out_of_envelope).hex()]


@st.composite
def podlet_vectors(draw):
    image = podlet.encode(draw(podlets()), bytes(64))
    return ["G " + image.hex(), "G " + draw(bit_flip(image[:24])).hex(),
            "G " + (draw(bit_flip(image[:24])) + image[24:]).hex()]


@st.composite
def signed_vectors(draw):
    signed = signing.sign_profile(KEY, draw(profiles()))
    return ["S %s %s" % (PUB.hex(), signed.hex()),
            "S %s %s" % (PUB.hex(), draw(bit_flip(signed)).hex())]


@st.composite
def tag_vectors(draw):
    """A command sealed with a session key, checked as sent, with a bit flipped (CRC
    made good again, so the tag is what is judged) and with another key."""
    key = draw(st.binary(min_size=32, max_size=32))
    ctr = draw(st.integers(0, 0xFFFFFFFF))
    msg = {k: v for k, v in draw(messages_any()).items() if k not in ("ctr", "tag")}
    msg["flags"] &= ~messages.FLAG_MAC
    lines = ["A %s %d %s" % (key.hex(), ctr, json.dumps(_json(msg)))]
    try:
        sealed = pairing.seal(msg, pairing.session_pads(key, bytes(16), bytes(16), bytes(8)), ctr)
    except podproto.ProtocolError:
        return lines
    flipped = bytearray(draw(bit_flip(sealed[:-codec.CRC_LEN])) + bytes(codec.CRC_LEN))
    codec.put_crc(flipped)
    other = draw(st.binary(min_size=32, max_size=32))
    return lines + ["T %s %s" % (key.hex(), sealed.hex()), "T %s %s" % (key.hex(), flipped.hex()),
                    "T %s %s" % (other.hex(), sealed.hex())]


@st.composite
def x25519_vectors(draw):
    return ["X %s %s" % (draw(st.binary(min_size=32, max_size=32)).hex(),
                         draw(st.binary(min_size=32, max_size=32)).hex())]


@st.composite
def log_vectors(draw):
    return ["E " + json.dumps(draw(journal_records()))]


def make_vectors() -> list[str]:
    lines: list[str] = []
    _collect(message_vectors(), 1200, lines)
    _collect(junk_vectors(), 600, lines)
    _collect(pdu_vectors(), 600, lines)
    _collect(profile_vectors(), 300, lines)
    _collect(podlet_vectors(), 300, lines)
    _collect(signed_vectors(), 60, lines)
    _collect(log_vectors(), 400, lines)
    _collect(tag_vectors(), 300, lines)
    _collect(x25519_vectors(), 20, lines)
    return lines


def test_micropython_replay_matches_cpython(micropython, tmp_path):
    lines = make_vectors()
    assert len(lines) >= MIN_VECTORS
    path = tmp_path / "vectors.txt"
    path.write_text("\n".join(lines) + "\n")
    expected = [replay_line(line) for line in lines]
    got = micropython(HERE / "proto_replay.py", path, timeout_s=120).splitlines()
    assert len(got) == len(lines)
    for line, want, have in zip(lines, expected, got):
        assert have == want, "vector %s\n  CPython:     %s\n  MicroPython: %s" % (
            line[:300], want[:300], have[:300])
    # The vectors exercise both sides of every decision.
    decisions = {(line[0], out.split(" ")[0]) for line, out in zip(lines, expected)
                 if line[0] != "R"}
    assert decisions >= {(k, v) for k in "MDPGS" for v in ("ok", "err")}
    # Tags: good ones accepted, flipped and foreign ones refused, on both runtimes.
    verdicts = {out.split(" ")[-1] for line, out in zip(lines, expected) if line[0] == "T"
                and out.startswith("ok")}
    assert verdicts == {"0", "1"}
    kinds = {json.loads(line[2:])["event"] for line in lines if line[0] == "E"}
    assert len(kinds & set(logevents.EVENT_NAMES)) >= 15 and kinds - set(logevents.EVENT_NAMES)
    assert "?" not in expected
