"""Fixtures for the BLE tests: a simulated air in this process, and steamers served on
it by `steamer sim serve` (the real firmware on micropython with boards/sim)."""
from __future__ import annotations

import asyncio

import pytest

from steamer_sim.air import Air, LinkParams
from steamer.client import KeyRing
from steamer_bench.ble import pair, serve


@pytest.fixture(scope="module")
def air() -> Air:
    a = Air(LinkParams())
    a.start_thread()
    return a


def run(coro):
    return asyncio.run(coro)


def served_and_paired(air: Air, tmp, name: str, speed: float = 10.0):
    """A served steamer and a key ring paired with it, for a module fixture to yield."""
    s = serve(air, tmp, name, speed=speed)
    ring = KeyRing()
    try:
        run(pair(s.addr, air.address, ring))
    except BaseException:
        s.stop()
        raise
    return s, ring
