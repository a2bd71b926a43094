"""Unauthenticated, replayed, oversized and malformed writes to the Command
characteristic: each is refused with an `error` event, and the steamer keeps working."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import pytest

import podproto
from podproto import codec, gatt, pairing
from podproto.link import PDU_HEADER
from steamer.client import KeyRing, MemoryLogSink, Steamer, SteamerError

from asyncio import run
from steamer_harness.ble import served_and_paired
from steamer_sim.backend import sim_radio


@pytest.fixture(scope="module")
def paired(air, tmp_path_factory):
    s, ring = served_and_paired(air, tmp_path_factory.mktemp("fuzz"), "fuzz-1", speed=20)
    yield s, ring
    s.stop()
    assert s.crashes() == []


@dataclass
class _After:
    """A log sink that starts after `last`."""
    last: int
    sink: MemoryLogSink = field(default_factory=MemoryLogSink)

    def last_seq(self) -> int:
        return self.sink.last_seq() or self.last

    def add(self, records: list[dict]) -> None:
        self.sink.add(records)


async def _still_working(st: Steamer) -> None:
    assert (await st.status())["type"] == "status"
    await st.authenticate()
    await st.set_clock(1_800_000_000)


def _garbage(rng: random.Random, max_pdu: int) -> bytes:
    kind = rng.randrange(5)
    n = rng.randint(1, max_pdu)
    body = bytes(rng.getrandbits(8) for _ in range(n))
    if kind == 0:
        return body                                   # anything at all
    frame = podproto.encode(rng.choice([{"type": "set_clock", "epoch_s": 1},
                                        {"type": "session_start", "podlet_type": 1},
                                        {"type": "log_ack", "seq": 1, "journal_id": bytes(8)}])
                       | {"id": rng.randrange(256)})
    if kind == 1:                                     # a frame with bytes flipped
        b = bytearray(frame)
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return _pdu(0, 0x80, bytes(b)[:max_pdu - PDU_HEADER])
    if kind == 2:                                     # a frame cut short
        return _pdu(0, 0x80, frame[:rng.randrange(1, len(frame))])
    if kind == 3:                                     # a PDU whose length is wrong
        piece = frame[:max_pdu - PDU_HEADER]
        return bytes([0, 0x80, (len(piece) + rng.choice([-1, 1, 7])) & 0xFF]) + piece
    return _pdu(rng.randrange(256), rng.randrange(256), frame[:max_pdu - PDU_HEADER])


def _pdu(seq: int, ctl: int, piece: bytes) -> bytes:
    return bytes([seq, ctl, len(piece)]) + piece


def test_malformed_pdus_are_refused_and_the_steamer_keeps_working(paired):
    s, ring = paired
    rng = random.Random(11)

    async def go():
        async with Steamer(s.addr, ring, **sim_radio(s.air.address).steamer_kw()) as st:
            max_pdu = st.fragmenter.max_pdu
            refused = 0
            for _ in range(300):
                pdu = _garbage(rng, max_pdu)
                st.fragmenter.seq = (pdu[0] + 1) & 0xFF   # the device resyncs on every PDU's seq
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
            st.fragmenter.seq = 0
        async with Steamer(s.addr, ring, **sim_radio(s.air.address).steamer_kw()) as st:
            await _still_working(st)
    run(go())


def test_unauthenticated_and_oversized_frames_are_refused(paired):
    s, ring = paired

    async def go():
        async with Steamer(s.addr, KeyRing(), **sim_radio(s.air.address).steamer_kw()) as st:
            for msg in ({"type": "session_start", "podlet_type": 1}, {"type": "session_stop"},
                        {"type": "set_clock", "epoch_s": 5},
                        {"type": "log_ack", "seq": 99, "journal_id": bytes(8)},
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
        async with Steamer(s.addr, ring, **sim_radio(s.air.address).steamer_kw()) as st:
            await _still_working(st)
    run(go())


async def _write_frame(st: Steamer, frame: bytes) -> None:
    """Writes a frame as an attacker on the link would: its own bytes, in PDUs that
    continue the connection's PDU sequence."""
    for pdu in st.fragmenter.split(frame):
        await st.write_pdu(pdu)


async def _refused(st: Steamer, mid: int, why: str) -> None:
    with pytest.raises(SteamerError) as e:
        await st.receive(["ack"], mid)
    assert e.value.code == "auth_failed" and why in str(e.value), e.value


async def _many(st: Steamer, n: int) -> None:
    """n authenticated commands, answered (pipelined, as credits allow)."""
    ids = [await st.send({"type": "profile_list_get"}) for _ in range(n)]
    for mid in ids:
        await st.receive(["profile_list"], mid)


def test_replayed_reordered_and_forged_commands_are_refused(paired):
    """Every command after authentication carries a counter past the last one's (by at
    most CTR_SKIP_MAX + 1) and its tag: a replay (however many commands later), a frame
    that comes after a later one, a tag with a bit flipped
    and a command forged without the session key are each refused with auth_failed,
    and the connection goes on: the genuine host's next command runs."""
    s, ring = paired

    async def go():
        async with Steamer(s.addr, ring, **sim_radio(s.air.address).steamer_kw()) as st:
            await st.authenticate()
            before = await st.sync_logs(_After(st.info["log_first"] - 1))
            clock = st.frame({"type": "set_clock", "epoch_s": 1_800_000_100}, ack=True)
            await _write_frame(st, clock)
            mid = podproto.decode(clock)["id"]
            await st.receive(["ack"], mid)
            # Replayed after more than 128, then more than 256 commands: 8-bit ids
            # would have wrapped round to it; the 32-bit counter never does.
            for n in (130, 130):
                await _many(st, n)
                await _write_frame(st, clock)
                await _refused(st, mid, "counter")
            await st.set_clock(1_800_000_200)

            # Reordered: the second of two frames sent first runs (a counter ahead is
            # frames lost on the way: fw.blecmd CTR_SKIP_MAX); the first, now behind,
            # is refused, and neither runs again.
            first = st.frame({"type": "set_clock", "epoch_s": 1_800_000_300}, ack=True)
            second = st.frame({"type": "set_clock", "epoch_s": 1_800_000_400}, ack=True)
            await _write_frame(st, second)
            await st.receive(["ack"], podproto.decode(second)["id"])
            await _write_frame(st, first)
            await _refused(st, podproto.decode(first)["id"], "counter")
            await _write_frame(st, second)                    # and not again
            await _refused(st, podproto.decode(second)["id"], "counter")

            # One bit of the tag flipped (the CRC made good, as a forger would).
            good = st.frame({"type": "session_stop"}, ack=True)
            bad = bytearray(good)
            bad[len(bad) - codec.CRC_LEN - 5] ^= 0x10
            codec.put_crc(bad)
            await _write_frame(st, bytes(bad))
            await _refused(st, podproto.decode(good)["id"], "bad command tag")

            # Forged: the counter the device expects (guessed right), any other key;
            # and a command with no tag at all.
            forged = pairing.seal({"type": "set_clock", "id": 200, "flags": 2, "epoch_s": 1},
                                  pairing.pads(os.urandom(32)), podproto.decode(good)["ctr"])
            await _write_frame(st, forged)
            await _refused(st, 200, "bad command tag")
            await _write_frame(st, podproto.encode({"type": "set_clock", "id": 201,
                                                    "flags": 2, "epoch_s": 1}))
            await _refused(st, 201, "no command tag")

            # The genuine frame, in its turn, still runs; so does what follows it.
            await _write_frame(st, good)
            with pytest.raises(SteamerError) as e:
                await st.receive(["ack"], podproto.decode(good)["id"])
            assert e.value.code == "bad_state"                # no session to stop
            assert (await st.status())["type"] == "status"
            await st.set_clock(1_800_000_500)
            # The journal holds one record of it all, not one per forgery.
            after = _After(before.last_seq)
            await st.sync_logs(after)
            rejected = [r for r in after.sink.records if r["kind"] == "command_rejected"
                        and r["payload"]["reason"].startswith("auth_failed")]
            assert len(rejected) == 1, rejected
        # A whole authentication replayed on a new connection fails: the nonce is new.
        async with Steamer(s.addr, ring, **sim_radio(s.air.address).steamer_kw()) as st:
            host_id, key = ring.get(s.addr)
            mid = await st.send({"type": "auth_response", "host_id": host_id,
                                 "nonce": bytes(16), "mac": pairing.auth_mac(
                                     key, bytes(16), bytes(16), host_id)})
            with pytest.raises(SteamerError) as e:
                await st.receive(["key_confirm"], mid)
            assert e.value.code == "auth_failed"
            # So does a command sealed for the last connection's session.
            await _write_frame(st, clock)
            with pytest.raises(SteamerError) as e:
                await st.receive(["ack"], podproto.decode(clock)["id"])
            assert e.value.code == "auth_required"
            await _still_working(st)
    run(go())
