"""Fixtures for the BLE tests: a simulated air in this process. The steamers served on it
(`steamer sim serve`: the real firmware on micropython with boards/sim) and the steps
the tests take with them are steamer_harness.ble's, which the benchmark runs too."""
from __future__ import annotations

import pytest

from steamer_sim.air import Air, LinkParams


@pytest.fixture(scope="module")
def air() -> Air:
    a = Air(LinkParams())
    a.start_thread()
    return a
