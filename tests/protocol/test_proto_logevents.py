"""Log sync's record packing (podproto.logevents): what the host gets back is the device's
journal record, to the precision each layout states, in a fixed-size entry."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import podproto
from podproto import logevents
from proto_strategies import ASCII, journal_records


def test_every_layout_fits_the_data_and_names_a_known_event():
    import struct
    for name, layout in logevents.LAYOUTS.items():
        assert name in logevents.EVENT_NAMES
        size = sum(int(k[1:]) if k[0] in "sx" else struct.calcsize(k) for _, k, _ in layout)
        assert size <= logevents.DATA_BYTES, name


@given(journal_records())
def test_any_record_packs_into_one_fixed_size_entry(rec):
    entry = logevents.to_wire(5, rec)
    frame = podproto.encode({"type": "log_records", "id": 0, "records": [entry]})
    empty = podproto.encode({"type": "log_records", "id": 0, "records": []})
    assert len(frame) - len(empty) == logevents.WIRE_BYTES
    back = logevents.from_wire(podproto.decode(frame)["records"][0])
    assert back["seq"] == 5
    assert back["payload"]["t_ms"] == rec["t_ms"] % 2 ** 32


@given(st.integers(0, 2 ** 31), st.integers(1, 2 ** 32 - 1),
       st.integers(-300_00, 300_00), st.integers(0, 100_0), st.integers(0, 10 ** 6),
       st.sampled_from(["idle", "preheat", "steaming", "cooldown"]))
def test_a_sample_comes_back_as_the_store_takes_it(t_ms, t, boiler_cc, heater_pm, ul_x1000,
                                                   state):
    rec = {"event": "sample", "t": t, "t_ms": t_ms, "state": state, "boiler_c": boiler_cc / 100,
           "outlet_c": 45.25, "heater_pct": heater_pm / 10, "pump_ul_min": 1200.0,
           "session_ul": ul_x1000 / 1000}
    back = logevents.from_wire(logevents.to_wire(9, rec))
    assert back == {"seq": 9, "kind": "sample", "payload": {
        "t": t, "t_ms": t_ms, "state": state, "boiler_c": rec["boiler_c"], "outlet_c": 45.25,
        "heater_pct": rec["heater_pct"], "pump_ul_min": 1200.0,
        "session_ul": rec["session_ul"]}}


@given(st.text(ASCII, min_size=1, max_size=17), st.integers(0, 2 ** 48 - 1))
def test_a_session_start_keeps_serial_and_profile_name(name, serial):
    rec = {"event": "session_started", "t": None, "t_ms": 1000, "podlet": "%012x" % serial,
           "podlet_type": 3, "profile": name, "version": 2, "target_c": 45.5, "limit_ul": 2500}
    p = logevents.from_wire(logevents.to_wire(1, rec))["payload"]
    assert "t" not in p                          # the clock was not set
    assert p.get("podlet") == (rec["podlet"] if serial else None)
    assert (p["podlet_type"], p["version"], p["target_c"], p["limit_ul"]) == (3, 2, 45.5, 2500)
    assert p["profile"] == name.rstrip("\0")


def test_an_event_unknown_to_the_table_keeps_its_name():
    back = logevents.from_wire(logevents.to_wire(3, {"event": "podlet_checking", "t_ms": 0}))
    assert back["kind"] == "podlet_checking"


def test_out_of_range_values_are_clamped_not_wrapped():
    p = logevents.from_wire(logevents.to_wire(1, {
        "event": "sample", "t_ms": 0, "boiler_c": 900.0, "outlet_c": -900.0,
        "session_ul": -5}))["payload"]
    assert (p["boiler_c"], p["outlet_c"], p["session_ul"]) == (327.67, -327.68, 0.0)
