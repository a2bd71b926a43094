"""Unauthenticated, replayed, oversized and malformed writes to the Command
characteristic: each is refused with an `error` event, and the steamer keeps working."""
from __future__ import annotations

import random

import pytest

import podproto
from podproto import gatt
from podproto.link import Fragmenter
from steamer.ble.client import KeyRing, Steamer, SteamerError

from conftest import run, served_and_paired


@pytest.fixture(scope="module")
def paired(air, tmp_path_factory):
    s, ring = served_and_paired(air, tmp_path_factory.mktemp("fuzz"), "fuzz-1", speed=20)
    yield s, ring
    s.stop()
    assert s.crashes() == []


async def _still_working(st: Steamer) -> None:
    assert (await st.status())["type"] == "status"
    await st.authenticate()
    await st.set_clock(1_800_000_000)


def _garbage(rng: random.Random, max_pdu: int) -> bytes:
    kind = rng.randrange(4)
    n = rng.randint(1, max_pdu)
    body = bytes(rng.getrandbits(8) for _ in range(n))
    if kind == 0:
        return body                                   # anything at all
    frame = podproto.encode(rng.choice([{"type": "set_clock", "epoch_s": 1},
                                        {"type": "session_start", "podlet_type": 1},
                                        {"type": "log_ack", "seq": 1}]) | {"id": rng.randrange(256)})
    if kind == 1:                                     # a frame with bytes flipped
        b = bytearray(frame)
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes([0, 0x80]) + bytes(b)[:max_pdu - 2]
    if kind == 2:                                     # a frame cut short
        return bytes([0, 0x80]) + frame[:rng.randrange(1, len(frame))]
    return bytes([rng.randrange(256), rng.randrange(256)]) + frame[:max_pdu - 2]


def test_malformed_pdus_are_refused_and_the_steamer_keeps_working(paired):
    s, ring = paired
    rng = random.Random(11)

    async def go():
        async with Steamer(s.addr, ring, sim=s.air.address) as st:
            max_pdu = st._frag.max_pdu
            refused = 0
            for _ in range(300):
                pdu = _garbage(rng, max_pdu)
                st._frag.seq = (pdu[0] + 1) & 0xFF   # the device resyncs on every PDU's seq
                await st.write_pdu(pdu)
            # Every one was answered; the errors name what was wrong.
            st.timeout_s = 1.0
            while True:
                try:
                    msg = await st.receive(["error"])
                except SteamerError as e:
                    if e.code == "timeout":
                        break
                    refused += 1
                    continue
            assert refused >= 150
            st._frag.seq = 0
            st._frag = Fragmenter(max_pdu)
        async with Steamer(s.addr, ring, sim=s.air.address) as st:
            await _still_working(st)
    run(go())


def test_unauthenticated_and_oversized_frames_are_refused(paired):
    s, ring = paired

    async def go():
        async with Steamer(s.addr, KeyRing(), sim=s.air.address) as st:
            for msg in ({"type": "session_start", "podlet_type": 1}, {"type": "session_stop"},
                        {"type": "set_clock", "epoch_s": 5}, {"type": "log_ack", "seq": 99},
                        {"type": "profile_begin", "size": 10, "sha256": bytes(32)},
                        {"type": "fault_ack", "code": 0}):
                with pytest.raises(SteamerError) as e:
                    await st.request(msg, ["ack", "profile_offset"], True)
                assert e.value.code == "auth_required"
            # A frame bigger than the device's reassembly buffer.
            await st.send({"type": "profile_chunk", "offset": 0, "data": bytes(1500)})
            with pytest.raises(SteamerError) as e:
                await st.receive([])          # refused before its id is known
            assert e.value.code == "too_large"
            # A device-to-host type sent to the device.
            with pytest.raises(SteamerError) as e:
                await st.request({"type": "credit"}, ["ack"])
            assert e.value.code == "unknown_type"
            # A PDU longer than the ATT MTU allows never leaves the host's stack.
            with pytest.raises(Exception):
                await st.client.write_gatt_char(gatt.COMMAND_UUID, bytes(300), response=False)
        async with Steamer(s.addr, ring, sim=s.air.address) as st:
            await _still_working(st)
    run(go())


def test_replayed_and_reordered_commands_are_refused(paired):
    s, ring = paired

    async def go():
        async with Steamer(s.addr, ring, sim=s.air.address) as st:
            await st.authenticate()
            mid = await st.send({"type": "set_clock", "epoch_s": 1_800_000_100}, ack=True)
            await st.receive(["ack"], mid)
            # The same frame again (same id): a replay.
            replay = podproto.encode({"type": "set_clock", "id": mid, "flags": 2,
                                      "epoch_s": 1_800_000_100})
            for pdu in st._frag.split(replay):
                await st.write_pdu(pdu)
            with pytest.raises(SteamerError) as e:
                await st.receive(["ack"], mid)
            assert e.value.code == "auth_failed" and "replayed" in str(e.value)
            # An older id: reordered.
            old = podproto.encode({"type": "set_clock", "id": (mid - 5) & 0xFF, "flags": 2,
                                   "epoch_s": 1})
            for pdu in st._frag.split(old):
                await st.write_pdu(pdu)
            with pytest.raises(SteamerError) as e:
                await st.receive(["ack"], (mid - 5) & 0xFF)
            assert e.value.code == "auth_failed"
            st._id = mid + 1
            await st.set_clock(1_800_000_200)
        # A whole authentication replayed on a new connection fails: the nonce is new.
        async with Steamer(s.addr, ring, sim=s.air.address) as st:
            host_id, key = ring.get(s.addr)
            from podproto import pairing
            mid = await st.send({"type": "auth_response", "host_id": host_id,
                                 "nonce": bytes(16), "mac": pairing.auth_mac(
                                     key, bytes(16), bytes(16), host_id)})
            with pytest.raises(SteamerError) as e:
                await st.receive(["key_confirm"], mid)
            assert e.value.code == "auth_failed"
            await _still_working(st)
    run(go())
