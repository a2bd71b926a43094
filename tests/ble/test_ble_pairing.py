"""Pairing end to end against the firmware: a key is kept only once the host has proved
it holds it (its first authentication under the new key), so a pair request replayed
by someone who captured it changes nothing, while a host that pairs again on purpose
(the same host key, the button held) gets its new key."""
from __future__ import annotations

import asyncio
import os

import pytest

from podproto import pairing
from steamer.client import KeyRing, Steamer, SteamerError
from steamer_harness.ble import serve
from steamer_sim.backend import sim_radio

from asyncio import run


@pytest.fixture(scope="module")
def steamer(air, tmp_path_factory):
    s = serve(air, tmp_path_factory.mktemp("pairing"), "pairing-1")   # button held
    yield s
    s.stop()
    assert s.crashes() == []


async def _request(st: Steamer, host_pub: bytes, host_nonce: bytes) -> tuple[dict, dict]:
    """Sends a pair request (retrying until the window opens); the steamer's answer."""
    for _ in range(150):
        mid = await st.send({"type": "pair_request", "host_pub": host_pub,
                             "host_nonce": host_nonce})
        try:
            chal = await st.receive(["pair_challenge"], mid, 30)
        except SteamerError as e:
            if e.code != "bad_state":
                raise
            await asyncio.sleep(0.1)
            continue
        return chal, await st.receive(["key_confirm"], mid)
    raise AssertionError("the pairing window never opened")


async def _pair_by_hand(st: Steamer, ring: KeyRing, priv: bytes, pub: bytes,
                        host_nonce: bytes) -> bytes:
    """What Steamer.pair does, with the host's key pair and nonce chosen here, so the
    test holds the request an eavesdropper would have captured; the pairing key."""
    chal, confirm = await _request(st, pub, host_nonce)
    key = pairing.pair_key(pairing.x25519(priv, chal["dev_pub"]), host_nonce, chal["dev_nonce"])
    host_id = pairing.host_id_of(pub)
    assert pairing.equal(confirm["mac"], pairing.pair_confirm(key, host_id))
    ring.put(st.address, host_id, key)
    await st.authenticate()          # the proof of possession, on the same connection
    return key


def test_a_replayed_pair_request_leaves_the_owners_key_working(steamer):
    addr, air = steamer.addr, steamer.air.address
    priv, pub = pairing.keypair()
    nonce = os.urandom(16)
    owner = KeyRing()

    async def go():
        async with Steamer(addr, owner, **sim_radio(air).steamer_kw()) as st:
            await _pair_by_hand(st, owner, priv, pub, nonce)
        # The eavesdropper replays the owner's request while the window is open: the
        # steamer answers (it cannot tell), but the eavesdropper cannot use the answer.
        async with Steamer(addr, KeyRing(), **sim_radio(air).steamer_kw()) as st:
            await _request(st, pub, nonce)
        async with Steamer(addr, owner, **sim_radio(air).steamer_kw()) as st:
            await st.authenticate()
            assert (await st.profiles()) is not None
    run(go())


def test_pairing_again_on_purpose_replaces_the_key_once_proved(steamer):
    addr, air = steamer.addr, steamer.air.address
    priv, pub = pairing.keypair()
    ring = KeyRing()

    async def go():
        async with Steamer(addr, ring, **sim_radio(air).steamer_kw()) as st:
            first = await _pair_by_hand(st, ring, priv, pub, os.urandom(16))
        async with Steamer(addr, ring, **sim_radio(air).steamer_kw()) as st:
            second = await _pair_by_hand(st, ring, priv, pub, os.urandom(16))
        assert first != second
        async with Steamer(addr, ring, **sim_radio(air).steamer_kw()) as st:
            await st.authenticate()                  # the new key
        old = KeyRing()
        old.put(addr, pairing.host_id_of(pub), first)
        async with Steamer(addr, old, **sim_radio(air).steamer_kw()) as st:
            with pytest.raises(SteamerError) as e:
                await st.authenticate()
            assert e.value.code == "auth_failed"
    run(go())


def test_a_pairing_the_host_never_proves_keeps_no_key(steamer):
    addr, air = steamer.addr, steamer.air.address
    priv, pub = pairing.keypair()
    ring = KeyRing()

    async def go():
        nonce = os.urandom(16)
        async with Steamer(addr, ring, **sim_radio(air).steamer_kw()) as st:
            chal, _ = await _request(st, pub, nonce)
        key = pairing.pair_key(pairing.x25519(priv, chal["dev_pub"]), nonce, chal["dev_nonce"])
        ring.put(addr, pairing.host_id_of(pub), key)
        async with Steamer(addr, ring, **sim_radio(air).steamer_kw()) as st:
            with pytest.raises(SteamerError) as e:
                await st.authenticate()
            assert e.value.code == "auth_failed" and "unknown host" in str(e.value)
        # Steamer.pair proves the key itself: paired, and the connection authenticated.
        async with Steamer(addr, ring, **sim_radio(air).steamer_kw()) as st:
            await st.pair()
            assert st.authenticated
        async with Steamer(addr, ring, **sim_radio(air).steamer_kw()) as st:
            await st.authenticate()
    run(go())
