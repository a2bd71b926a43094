"""A connection that has not authenticated does not hold the steamer: it goes on
advertising, a paired host that connects takes the link at once (the silent central
is dropped), and the firmware drops a connection that does not authenticate within
fw.ble.AUTH_TIMEOUT_S (real seconds, the link's clock, whatever the simulation's
speed). Once a host has authenticated the steamer stops advertising. The authenticated
connection's idle timeout (120 s) is tested on the device (tests/device/mpt_ble_link.py)."""
from __future__ import annotations

import asyncio
import time

import pytest
from bleak import BleakClient
from bleak.backends.device import BLEDevice

from steamer.client import Steamer
from steamer_sim.backend import SimClient
from steamer_harness.ble import advertising as _advertising

from asyncio import run
from steamer_harness.ble import served_and_paired
from steamer_sim.backend import sim_radio

SPEED = 10.0
AUTH_TIMEOUT_S = 10       # fw.ble's, which CPython does not import


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
        assert raw.is_connected
        held_s = await _until_dropped(lambda: raw.is_connected, 60)
        assert not raw.is_connected, "the silent central still holds the steamer"
        # The steamer's 10 s are real ones, at 10 times real time too.
        assert AUTH_TIMEOUT_S - 0.5 <= held_s <= AUTH_TIMEOUT_S + 5, held_s
        # Advertising again: the paired host connects and is served.
        async with Steamer(s.addr, ring, **sim_radio(air.address).steamer_kw()) as st:
            await st.authenticate()
            assert isinstance(await st.profiles(), list)
        await raw.disconnect()
    run(go())


def test_a_paired_host_gets_in_at_once_past_a_silent_central_which_is_dropped(paired):
    s, ring = paired
    air = s.air

    async def go():
        while not air.call(_advertising, air, s.name):
            await asyncio.sleep(0.02)
        raw = BleakClient(BLEDevice(s.addr, None, {"air": air.address}), backend=SimClient,
                          air=air.address)
        await raw.connect()
        t0 = time.monotonic()
        # The steamer advertises again while its connection has not authenticated.
        while not air.call(_advertising, air, s.name) and time.monotonic() - t0 < 3:
            await asyncio.sleep(0.02)
        assert raw.is_connected and air.call(_advertising, air, s.name)
        async with Steamer(s.addr, ring, **sim_radio(air.address).steamer_kw()) as st:
            await st.authenticate()
            assert isinstance(await st.profiles(), list)
            assert (await st.status())["state"] >= 0
            took_s = time.monotonic() - t0
            assert took_s < AUTH_TIMEOUT_S / 2, took_s
            # The silent central was dropped for the host, and nobody else gets in now.
            dropped_s = await _until_dropped(lambda: raw.is_connected, 2)
            assert not raw.is_connected, dropped_s
            await asyncio.sleep(0.3)
            assert not air.call(_advertising, air, s.name)
            third = BleakClient(BLEDevice(s.addr, None, {"air": air.address}),
                                backend=SimClient, air=air.address)
            with pytest.raises(Exception, match="not advertising"):
                await third.connect()
            assert isinstance(await st.profiles(), list)
    run(go())
