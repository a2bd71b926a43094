"""A connection holds the steamer (it stops advertising while connected), so the
firmware drops one that does not authenticate within fw.ble.AUTH_TIMEOUT_S and an
authenticated one silent for fw.ble.IDLE_TIMEOUT_S (seconds of the steamer's uptime; a
simulated steamer at --speed X runs them X times faster at most): a central that
connects and does nothing no longer keeps every host out."""
from __future__ import annotations

import asyncio
import time

import pytest
from bleak import BleakClient
from bleak.backends.device import BLEDevice

from steamer.ble.client import Steamer
from steamer.ble.simbackend import SimClient
from steamer_tools.bench_ble import _advertising

from conftest import run, served_and_paired

SPEED = 10.0
AUTH_TIMEOUT_S = 10       # fw.ble's, which CPython does not import
IDLE_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def paired(air, tmp_path_factory):
    s, ring = served_and_paired(air, tmp_path_factory.mktemp("timeouts"), "timeouts-1",
                                speed=SPEED)
    yield s, ring
    s.stop()
    assert s.crashes() == []


async def _until_dropped(is_connected, timeout_s: float) -> float:
    """Wall seconds until is_connected() goes false (timeout_s at most)."""
    t0 = time.monotonic()
    while is_connected() and time.monotonic() - t0 < timeout_s:
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


def test_a_central_that_connects_and_does_nothing_is_dropped_then_a_host_gets_in(paired):
    s, ring = paired
    air = s.air

    async def go():
        while not air.call(_advertising, air, s.name):     # the pairing's link has gone
            await asyncio.sleep(0.02)
        raw = BleakClient(BLEDevice(s.addr, None, {"air": air.address}), backend=SimClient,
                          air=air.address)
        await raw.connect()
        assert raw.is_connected and not air.call(_advertising, air, s.name)
        held_s = await _until_dropped(lambda: raw.is_connected, 60)
        assert not raw.is_connected, "the silent central still holds the steamer"
        # Not before the steamer's 10 s (its clock runs at most SPEED times the wall's).
        assert held_s >= AUTH_TIMEOUT_S / SPEED * 0.9, held_s
        # Advertising again: the paired host connects and is served.
        async with Steamer(s.addr, ring, sim=air.address) as st:
            await st.authenticate()
            assert isinstance(await st.profiles(), list)
        await raw.disconnect()
    run(go())


def test_an_authenticated_host_is_dropped_when_silent_and_kept_while_it_polls(paired):
    s, ring = paired
    air = s.air

    async def go():
        async with Steamer(s.addr, ring, sim=air.address) as st:
            await st.authenticate()
            client = st.client
            assert client is not None
            held_s = await _until_dropped(lambda: client.is_connected, 120)
            assert not client.is_connected
            assert held_s >= IDLE_TIMEOUT_S / SPEED * 0.9, held_s
        # Polling status keeps an authenticated connection (Steamer.status sends a
        # frame now and then): up past twice the idle timeout.
        async with Steamer(s.addr, ring, sim=air.address) as st:
            await st.authenticate()
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2.2 * IDLE_TIMEOUT_S / SPEED:
                assert (await st.status())["type"] == "status"
                await asyncio.sleep(0.5)
            assert st.connected and st.reconnects == 0
            assert isinstance(await st.profiles(), list)
    run(go())
