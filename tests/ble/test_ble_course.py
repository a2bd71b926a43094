"""A course profile's warnings acknowledged over BLE (issue 17), end to end: the host
library through bleak and the simulated air to the firmware on micropython. A start is
refused until a paired host sent warnings_ack for that podlet type and version; an
acknowledgement of another version is refused; then the session starts."""
from __future__ import annotations

from asyncio import run

import pytest

from steamer.client import KeyRing, SteamerError
from steamer.devices import detail_of
from steamer_harness.ble import button_held, linked, pair, serve

COURSE = {"podlet_type": 3, "version": 2, "name": "course", "outlet_target_c": 40.0,
          "session_s": 60, "dose_rate_ul_min": 300, "max_session_ul": 2500,
          "max_day_ul": 5000, "min_interval_s": 0, "course_sessions": 4,
          "min_spacing_s": 518400, "recommended_spacing_s": 604800,
          "warnings": [{"code": "kidney", "text": "Not with impaired kidneys."}],
          "acknowledge": True, "sign": "ok"}
SCENARIO = {"contract": 1, "duration_s": 86400, "profiles": [COURSE],
            "events": [{"t_s": 0.5, "do": "set_clock", "epoch_s": 1795000000},
                       {"t_s": 0.6, "do": "insert_podlet",
                        "podlet": {"serial": "0000c0ffee01", "podlet_type": 3,
                                   "capacity_ul": 3000, "expiry": "2030-06-30", "lot": "C1"}},
                       *button_held()]}


def test_start_refused_until_the_warnings_are_acknowledged(air, tmp_path):
    served = serve(air, tmp_path, "course-1", SCENARIO)
    try:
        ring = KeyRing()
        run(pair(served.addr, air.address, ring))

        async def go():
            st = await linked(served, ring)
            try:
                with pytest.raises(SteamerError) as e:
                    await st.start_session(3)
                assert detail_of(e.value) == "not_acknowledged"
                with pytest.raises(SteamerError) as e:
                    await st.acknowledge_warnings(3, 1)
                assert e.value.code == "stale_version"
                await st.acknowledge_warnings(3, 2)
                await st.start_session(3)
                await st.stop_session()
            finally:
                await st.close()
        run(go())
    finally:
        served.stop()
    assert served.crashes() == []
