"""The State characteristic names the inserted podlet's state (none, checking, accepted,
refused) and why a refused one was refused, read by a host that has not paired; the
firmware on micropython with boards/sim, through bleak and the simulated air."""
from __future__ import annotations

import asyncio

from podproto.names import PODLET_REASONS, PODLET_STATES
from steamer.client import KeyRing, Steamer
from steamer_harness.ble import button_held, pair, serve
from steamer_sim.backend import sim_radio

from asyncio import run

PODLET = {"serial": "0000c0ffee07", "podlet_type": 3, "capacity_ul": 30000,
          "expiry": "2030-06-30", "lot": "L1", "sign": "ok"}
PROFILE = {"podlet_type": 3, "version": 1, "name": "calm", "outlet_target_c": 40.0,
           "session_s": 60, "dose_rate_ul_min": 300, "max_session_ul": 2500,
           "max_day_ul": 50000, "min_interval_s": 0, "sign": "ok"}


async def _podlet(st: Steamer, timeout_s: float = 20,
                  until: tuple[str, ...] = ("accepted", "refused")) -> tuple[str, str | None]:
    """The podlet's (state, reason) once the state is one of `until` (its check over);
    State is written once a second, so it may say the last one for that long."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        s = await st.status()
        got = PODLET_STATES[s["podlet_state"]], PODLET_REASONS[s["podlet_reason"]]
        if got[0] in until or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.05)


def test_a_podlet_refused_for_the_clock_shows_so_until_a_start_accepts_it(air, tmp_path):
    """README's pairable steamer: the podlet is in, the clock is not set, so the podlet
    is refused with clock_unset (status used to say no podlet at all); a session start
    after setting the clock accepts it, and status says accepted."""
    s = serve(air, tmp_path, "status-clock", {
        "contract": 1, "duration_s": 3600, "profiles": [PROFILE],
        "events": [{"t_s": 0.5, "do": "insert_podlet", "podlet": PODLET}]
        + button_held(1, 600)}, speed=10)
    ring = KeyRing()

    async def go():
        async with Steamer(s.addr, KeyRing(), **sim_radio(air.address).steamer_kw()) as st:
            assert await _podlet(st) == ("refused", "clock_unset")
            status = await st.status()
            assert status["podlet_type"] == 0          # no podlet the steamer may use
        await pair(s.addr, air.address, ring)
        async with Steamer(s.addr, ring, **sim_radio(air.address).steamer_kw()) as st:
            await st.authenticate()
            await st.set_clock()
            await st.start_session(3)
            assert await _podlet(st, until=("accepted",)) == ("accepted", None)
            assert (await st.status())["podlet_type"] == 3
            await st.stop_session()
    try:
        run(go())
    finally:
        s.stop()
    assert s.crashes() == []


def test_no_podlet_reads_none_and_a_forged_one_names_its_refusal(air, tmp_path):
    s = serve(air, tmp_path, "status-forged", {
        "contract": 1, "duration_s": 3600, "profiles": [PROFILE],
        "events": [{"t_s": 5, "do": "insert_podlet",
                    "podlet": dict(PODLET, sign="wrong_key")}]}, speed=5)

    async def go():
        async with Steamer(s.addr, KeyRing(), **sim_radio(air.address).steamer_kw()) as st:
            first = await st.status()
            assert (first["podlet_state"], first["podlet_reason"]) == (0, 0)   # none
            assert await _podlet(st) == ("refused", "bad_signature")
    try:
        run(go())
    finally:
        s.stop()
    assert s.crashes() == []
