"""Connecting with retries (steamer.client.Steamer.connect): a steamer that refuses
the first connection attempts is reached on a later one, a budget spent ends in one
clear error, bleak-retry-connector's transient errors (EOFError from a dying D-Bus
socket) are retried, and a retry scans again rather than reuse a stale BLEDevice."""
from __future__ import annotations

import time

import pytest
from bleak.backends.device import BLEDevice

from steamer_sim import air as air_mod
from steamer.client import Steamer, SteamerError
from steamer_sim.backend import SimRadio
from steamer_harness.ble import serve
from steamer_sim.backend import sim_radio

from asyncio import run


@pytest.fixture(scope="module")
def steamer(air, tmp_path_factory):
    s = serve(air, tmp_path_factory.mktemp("connect"), "connect-1")
    yield s
    s.stop()
    assert s.crashes() == []


class RefuseConnects:
    """The air refuses the next `n` connect requests as the real stack does a peripheral
    that does not answer; `seen` counts every connect request meanwhile."""

    def __init__(self, air: air_mod.Air, n: int) -> None:
        self.air, self.left, self.seen = air, n, 0
        self.real = air.handle_central

    def __enter__(self) -> "RefuseConnects":
        self.air.call(self.air.tap_centrals, self._from_central)
        return self

    def __exit__(self, *exc: object) -> None:
        self.air.call(self.air.tap_centrals, None)

    def _from_central(self, c, op: str, msg: dict) -> None:
        if op == "connect":
            self.seen += 1
            if self.left > 0:
                self.left -= 1
                self.air.refuse(c, msg, "connection failed to be established")
                return
        self.real(c, op, msg)


def test_connect_retries_until_the_steamer_answers(steamer):
    async def go():
        st = Steamer(steamer.addr, **sim_radio(steamer.air.address).steamer_kw())
        with RefuseConnects(steamer.air, 3) as refuse:
            await st.connect(attempts=4)
        try:
            assert refuse.seen == 4 and st.connected
            assert st.info["rx_credits"] >= 1
            assert (await st.status())["type"] == "status"
        finally:
            await st.close()
    run(go())


def test_a_spent_budget_is_one_clear_error(steamer):
    async def go():
        st = Steamer(steamer.addr, **sim_radio(steamer.air.address).steamer_kw())
        t0 = time.monotonic()
        with RefuseConnects(steamer.air, 1000) as refuse:
            with pytest.raises(SteamerError) as e:
                await st.connect(attempts=3)
        assert refuse.seen == 3 and not st.connected
        assert f"{steamer.addr}: could not connect after 3 attempts" in str(e.value)
        assert "connection failed to be established" in str(e.value)
        # Backed off between tries, but boundedly (backoffs of at most 0.1 and 0.2 s, the
        # connector's own 0.1 s after each failure, two rescans that hear the steamer).
        assert time.monotonic() - t0 < 5
        # The steamer is still there for the next connection.
        await st.connect()
        await st.close()
    run(go())


def test_eoferror_from_the_backend_is_retried(steamer):
    """EOFError (bleak's D-Bus socket dying under it) is one of bleak-retry-connector's
    retried errors; a connect loop catching only BleakError let it escape."""
    failures = {"left": 2}

    radio = SimRadio(steamer.air.address)

    class Flaky(radio.client):
        async def connect(self, pair: bool = False, **kwargs) -> None:
            if failures["left"]:
                failures["left"] -= 1
                raise EOFError()
            await super().connect(pair, **kwargs)

    async def go():
        st = Steamer(steamer.addr, backend=Flaky, scanner_backend=radio.scanner)
        await st.connect(attempts=2)
        assert failures["left"] == 0 and st.connected
        await st.close()
    run(go())


def test_a_retry_scans_for_a_fresh_device(steamer, monkeypatch):
    """A BLEDevice from an old scan can name what is no longer there (here an air that
    has gone); the retry scans, and connects to the device the scan found."""
    monkeypatch.setenv(air_mod.ENV, steamer.air.address)
    stale = BLEDevice(steamer.addr, steamer.name, {"air": "127.0.0.1:9"})

    async def go():
        st = Steamer(stale, **sim_radio().steamer_kw())
        await st.connect(attempts=3)
        assert st.device is not stale and st.device.address == steamer.addr
        assert st.device.details["air"] == steamer.air.address
        await st.close()
    run(go())
