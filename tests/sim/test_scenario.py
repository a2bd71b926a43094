"""Scenario validation (steamer_sim.scenario): every rule of the simulator contract's
scenario file, and that each error's one line names the field at fault."""
from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from steamer_dev.paths import BOARDS, ROOT
from steamer_sim.scenario import (EVENTS, FAULTS, HIDDEN_PLANT_DEFAULTS, HIDDEN_PLANT_KEYS,
                                    MAX_PROFILES, PLANT_DEFAULTS,
                                    ScenarioError, load_scenario)

PROFILE = {"podlet_type": 3, "version": 1, "name": "vitamin-c", "outlet_target_c": 45.0,
           "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,
           "max_day_ul": 5000, "min_interval_s": 14400}
PODLET = {"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
          "expiry": "2027-06-30", "lot": "L2611"}


def base(**top) -> dict:
    scenario = {"duration_s": 900}
    scenario.update(top)
    return scenario


def with_event(**event) -> dict:
    ev = {"t_s": 1.0}
    ev.update(event)
    return base(events=[ev])


def error(scenario, **kw) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(scenario, **kw)
    message = str(info.value)
    assert "\n" not in message
    assert message == f"{info.value.field}: {info.value.message}"
    return info.value


def assert_error(scenario, field: str, *fragments: str) -> None:
    e = error(scenario)
    assert e.field == field, str(e)
    assert str(e).startswith(field + ": ")
    for fragment in fragments:
        assert fragment in e.message, str(e)


# ---- what a valid scenario becomes --------------------------------------------------------

def test_minimal_scenario_gets_every_default() -> None:
    assert load_scenario(base()) == {
        "contract": 1, "duration_s": 900, "seed": 0,
        "plant": {"ambient_c": 22.0, "water_ml": 150.0, "heater_w": 400.0,
                  "mains_pct": 100.0, "noise_pct": 100.0},
        "profiles": [], "events": [],
    }


def test_plant_defaults_match_the_plant_model() -> None:
    spec = importlib.util.spec_from_file_location("_plant", BOARDS / "sim" / "plant.py")
    assert spec is not None and spec.loader is not None
    plant = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plant)
    assert PLANT_DEFAULTS == plant.SCENARIO_DEFAULTS
    assert HIDDEN_PLANT_DEFAULTS == plant.HIDDEN_DEFAULTS


def test_hidden_plant_parameters_are_optional_and_checked() -> None:
    s = base()
    s["plant"] = {"nozzle_half_w": 322.5, "nozzle_tau_s": 5}
    plant = load_scenario(s)["plant"]
    assert plant["nozzle_half_w"] == 322.5 and plant["nozzle_tau_s"] == 5.0
    assert "loss_w_per_k" not in plant
    s["plant"] = {"metal_j_per_k": 200}
    assert_error(s, "plant.metal_j_per_k", "out of range 50..150")


def test_demo_scenario_is_valid_and_normalizing_twice_changes_nothing() -> None:
    once = load_scenario(ROOT / "scenarios" / "demo.json")
    assert once["seed"] == 7 and once["profiles"][0]["sign"] == "ok"
    assert load_scenario(once) == once
    assert load_scenario(json.dumps(once)) == once


def test_path_given_as_str_text_and_dict_agree(tmp_path: Path) -> None:
    raw = with_event(do="start_session")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(raw))
    assert load_scenario(str(path)) == load_scenario(path) == load_scenario(json.dumps(raw)) \
        == load_scenario(raw)


def test_input_dict_is_left_untouched() -> None:
    raw = base(profiles=[dict(PROFILE)],
               events=[{"t_s": 5, "do": "press_button"}, {"t_s": 1, "do": "insert_podlet",
                                                           "podlet": dict(PODLET)}])
    before = copy.deepcopy(raw)
    out = load_scenario(raw)
    assert raw == before
    out["events"][0]["podlet"]["lot"] = "X"
    assert raw == before


def test_events_sorted_by_time_stably() -> None:
    events = [{"t_s": 5, "do": "stop_session"},
              {"t_s": 1, "do": "fault", "fault": "pump_stall"},
              {"t_s": 1, "do": "start_session"},
              {"t_s": 0, "do": "remove_podlet"},
              {"t_s": 1, "do": "clear_fault", "fault": "pump_stall"}]
    out = load_scenario(base(events=events))["events"]
    assert [(e["t_s"], e["do"]) for e in out] == [
        (0, "remove_podlet"), (1, "fault"), (1, "start_session"), (1, "clear_fault"),
        (5, "stop_session")]


def test_event_defaults_filled_in() -> None:
    out = load_scenario(base(events=[
        {"t_s": 0, "do": "press_button"},
        {"t_s": 1, "do": "insert_podlet", "podlet": PODLET},
        {"t_s": 2, "do": "install_profile", "profile": PROFILE},
    ]))["events"]
    assert out[0] == {"t_s": 0, "do": "press_button", "ms": 100}
    assert out[1]["podlet"]["sign"] == "ok"
    assert out[2]["profile"]["sign"] == "ok"


def test_every_event_kind_accepted() -> None:
    fields = {"podlet": PODLET, "profile": PROFILE, "epoch_s": 1795000000, "ml": 100,
              "off_s": 5.5, "fault": "tip_over", "ms": 250, "podlet_type": 3, "version": 2}
    events = [dict({"t_s": i, "do": do}, **{f: fields[f] for f in EVENTS[do]})
              for i, do in enumerate(EVENTS)]
    out = load_scenario(base(events=events))
    assert [e["do"] for e in out["events"]] == list(EVENTS)


@pytest.mark.parametrize("fault", FAULTS)
def test_every_fault_name_accepted(fault: str) -> None:
    load_scenario(with_event(do="fault", fault=fault))
    load_scenario(with_event(do="clear_fault", fault=fault))


def test_constants_cover_the_contract() -> None:
    assert len(FAULTS) == 13 + 1 and "loop_stall" in FAULTS and "podlet_bus_error" in FAULTS
    assert FAULTS[-1] == "pump_runaway"     # ours, after the contract's 13
    assert set(EVENTS) == {"insert_podlet", "remove_podlet", "start_session", "stop_session",
                           "press_button", "install_profile", "set_clock", "refill_water",
                           "power_cut", "fault", "clear_fault", "swap_podlet",
                           "acknowledge_warnings"}
    assert set(PLANT_DEFAULTS) == {"ambient_c", "water_ml", "heater_w", "mains_pct", "noise_pct"}
    assert set(HIDDEN_PLANT_KEYS) == {"nozzle_half_w", "loss_w_per_k", "metal_j_per_k",
                                      "boiler_sensor_tau_s", "outlet_sensor_tau_s",
                                      "nozzle_tau_s"}


def test_v2_profile_fields_are_optional_and_checked_for_form() -> None:
    v2 = dict(PROFILE, course_sessions=4, pattern="pulsed", bolus_ul=20, period_s=30,
              warnings=[{"code": "kidney", "text": "Not with impaired kidneys."}],
              acknowledge=True)
    assert load_scenario(base(profiles=[v2]))["profiles"][0]["warnings"][0]["code"] == "kidney"
    assert "pattern" not in load_scenario(base(profiles=[PROFILE]))["profiles"][0]
    for bad, field in ((dict(v2, pattern="nappage"), "pattern"),
                       (dict(v2, acknowledge=1), "acknowledge"),
                       (dict(v2, warnings=[{"code": "gluten", "text": "x"}]), "code")):
        with pytest.raises(ScenarioError, match=field):
            load_scenario(base(profiles=[bad]))


def test_out_of_envelope_profile_is_still_a_valid_scenario() -> None:
    # The firmware rejects this; the scenario must be able to present it.
    profile = dict(PROFILE, outlet_target_c=70, dose_rate_ul_min=100000, sign="tamper")
    assert load_scenario(base(profiles=[profile]))["profiles"][0]["outlet_target_c"] == 70


def test_serial_normalized_to_lower_case() -> None:
    podlet = dict(PODLET, serial="0000C0FFEE01")
    out = load_scenario(with_event(do="insert_podlet", podlet=podlet))
    assert out["events"][0]["podlet"]["serial"] == "0000c0ffee01"


# ---- the file itself ----------------------------------------------------------------------

def test_bad_json_names_line_and_column() -> None:
    e = error('{\n  "duration_s": 900,\n  "events": [\n  }\n')
    assert e.field == "scenario"
    assert e.message.startswith("not valid JSON (line 4 column 3:")


@pytest.mark.parametrize("text", ['{"duration_s": NaN}', '{"duration_s": Infinity}'])
def test_non_json_numbers_rejected(text: str) -> None:
    assert error(text).field == "scenario"


def test_duplicate_key_rejected() -> None:
    assert_error('{"duration_s": 9, "duration_s": 10}', "scenario", "duplicate key 'duration_s'")


def test_missing_file_named() -> None:
    assert_error("/no/such/scenario.json", "scenario", "/no/such/scenario.json")


@pytest.mark.parametrize("text", ["[]", "[1]", "5", '"duration_s"', "null"])
def test_top_level_must_be_an_object(text: str, tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)
    assert_error(path, "scenario", "must be a JSON object")


def test_unknown_top_level_key() -> None:
    assert_error(base(event=[]), "event", "unknown key", "did you mean 'events'")


# ---- top-level fields ---------------------------------------------------------------------

@pytest.mark.parametrize("contract", [2, 0, "1", True])
def test_contract_must_be_1(contract) -> None:
    assert_error(base(contract=contract), "contract", "not supported")


def test_contract_1_accepted() -> None:
    assert load_scenario(base(contract=1))["contract"] == 1


def test_duration_required() -> None:
    assert_error({"seed": 1}, "duration_s", "required")


@pytest.mark.parametrize("value,fragment", [(0, "out of range 1..86400"), (86401, "out of range"),
                                            (0.5, "out of range"), ("900", "must be a number"),
                                            (True, "must be a number"), (None, "must be a number")])
def test_duration_range_and_type(value, fragment) -> None:
    assert_error(base(duration_s=value), "duration_s", fragment)


@pytest.mark.parametrize("value", [1, 86400, 12.5])
def test_duration_bounds_accepted(value) -> None:
    assert load_scenario(base(duration_s=value))["duration_s"] == value


@pytest.mark.parametrize("value,fragment", [(-1, "out of range 0..2147483647"),
                                            (2**31, "out of range"), (1.0, "must be an integer"),
                                            (True, "must be an integer"), ("7", "must be an integer")])
def test_seed_range_and_type(value, fragment) -> None:
    assert_error(base(seed=value), "seed", fragment)


def test_seed_override_replaces_and_is_checked() -> None:
    assert load_scenario(base(seed=3), seed_override=9)["seed"] == 9
    assert load_scenario(base(seed=3), seed_override=0)["seed"] == 0
    assert load_scenario(base(seed=3))["seed"] == 3
    assert error(base(), seed_override=-5).field == "seed"


# ---- plant ----------------------------------------------------------------------------------

@pytest.mark.parametrize("key,lo,hi", [("ambient_c", -10, 45), ("water_ml", 0, 300),
                                       ("heater_w", 100, 1000), ("mains_pct", 80, 115),
                                       ("noise_pct", 0, 100)])
def test_plant_ranges(key: str, lo: float, hi: float) -> None:
    for ok in (lo, hi, (lo + hi) / 2):
        assert load_scenario(base(plant={key: ok}))["plant"][key] == float(ok)
    for bad in (lo - 0.5, hi + 0.5):
        assert_error(base(plant={key: bad}), f"plant.{key}", f"{bad} is out of range {lo}..{hi}")
    assert_error(base(plant={key: True}), f"plant.{key}", "must be a number")
    assert_error(base(plant={key: "1"}), f"plant.{key}", "must be a number")


def test_plant_message_example() -> None:
    assert str(error(base(plant={"mains_pct": 150}))) == "plant.mains_pct: 150 is out of range 80..115"


def test_plant_partial_keeps_other_defaults_and_floats() -> None:
    plant = load_scenario(base(plant={"water_ml": 80}))["plant"]
    assert plant == dict(PLANT_DEFAULTS, water_ml=80.0)
    assert all(isinstance(v, float) for v in plant.values())


def test_plant_unknown_key_and_type() -> None:
    assert_error(base(plant={"ambient": 20}), "plant.ambient", "unknown key", "ambient_c")
    assert_error(base(plant=[]), "plant", "must be an object")


# ---- profiles ---------------------------------------------------------------------------------

@pytest.mark.parametrize("key,lo,hi", [("podlet_type", 0, 255), ("version", 0, 65535),
                                       ("session_s", 0, 86400), ("dose_rate_ul_min", 0, 100000),
                                       ("max_session_ul", 0, 1000000), ("max_day_ul", 0, 1000000),
                                       ("min_interval_s", 0, 604800)])
def test_profile_integer_ranges(key: str, lo: int, hi: int) -> None:
    for ok in (lo, hi):
        load_scenario(base(profiles=[dict(PROFILE, **{key: ok})]))
    for bad in (lo - 1, hi + 1):
        assert_error(base(profiles=[dict(PROFILE, **{key: bad})]), f"profiles[0].{key}",
                     f"{bad} is out of range {lo}..{hi}")
    for bad in (True, 1.5, "3", None):
        assert_error(base(profiles=[dict(PROFILE, **{key: bad})]), f"profiles[0].{key}",
                     "must be an integer")


def test_profile_outlet_target_range() -> None:
    for ok in (0, 100, 45.5):
        load_scenario(base(profiles=[dict(PROFILE, outlet_target_c=ok)]))
    for bad in (-0.1, 100.1):
        assert_error(base(profiles=[dict(PROFILE, outlet_target_c=bad)]),
                     "profiles[0].outlet_target_c", "out of range 0..100")


@pytest.mark.parametrize("name,fragment", [("", "1..24 characters"), ("x" * 25, "1..24 characters"),
                                           ("caf\u00e9", "printable ASCII"), ("a\tb", "printable ASCII"),
                                           (7, "must be a string")])
def test_profile_name(name, fragment) -> None:
    assert_error(base(profiles=[dict(PROFILE, name=name)]), "profiles[0].name", fragment)


def test_profile_name_bounds_accepted() -> None:
    for name in ("a", "x" * 24, " ~!{}"):
        load_scenario(base(profiles=[dict(PROFILE, name=name)]))


@pytest.mark.parametrize("key", [k for k in PROFILE])
def test_profile_fields_required(key: str) -> None:
    profile = {k: v for k, v in PROFILE.items() if k != key}
    assert_error(base(profiles=[PROFILE, profile]), f"profiles[1].{key}", "required")


@pytest.mark.parametrize("sign", ["ok", "none", "wrong_key", "tamper"])
def test_profile_signs(sign: str) -> None:
    assert load_scenario(base(profiles=[dict(PROFILE, sign=sign)]))["profiles"][0]["sign"] == sign


def test_profile_bad_sign_and_unknown_key() -> None:
    assert_error(base(profiles=[dict(PROFILE, sign="forged")]), "profiles[0].sign",
                 "unknown sign 'forged'")
    assert_error(base(profiles=[dict(PROFILE, target_c=45)]), "profiles[0].target_c", "unknown key")
    assert_error(base(profiles={}), "profiles", "must be a list")
    assert_error(base(profiles=[5]), "profiles[0]", "must be an object")


# ---- podlets ------------------------------------------------------------------------------------

def podlet_error(field: str, *fragments: str, **changes) -> None:
    podlet = dict(PODLET, **changes)
    assert_error(with_event(do="insert_podlet", podlet=podlet), f"events[0].podlet.{field}",
                 *fragments)


@pytest.mark.parametrize("serial", ["0000c0ffee0", "0000c0ffee012", "0000c0ffee0g", " 000c0ffee01",
                                    12648430, "0x00c0ffee01"])
def test_podlet_serial(serial) -> None:
    podlet_error("serial", "12 hex digits", serial=serial)


def test_podlet_integer_ranges() -> None:
    podlet_error("podlet_type", "out of range 0..255", podlet_type=256)
    podlet_error("podlet_type", "must be an integer", podlet_type=True)
    podlet_error("capacity_ul", "out of range 0..1000000", capacity_ul=1000001)
    podlet_error("capacity_ul", "out of range", capacity_ul=-1)


@pytest.mark.parametrize("expiry,fragment", [("2027-02-30", "not a valid date"),
                                             ("2027-13-01", "not a valid date"),
                                             ("27-06-30", "YYYY-MM-DD"), ("20270630", "YYYY-MM-DD"),
                                             ("2027-6-30", "YYYY-MM-DD"), (20270630, "YYYY-MM-DD")])
def test_podlet_expiry(expiry, fragment) -> None:
    podlet_error("expiry", fragment, expiry=expiry)


def test_podlet_leap_day_accepted() -> None:
    load_scenario(with_event(do="insert_podlet", podlet=dict(PODLET, expiry="2028-02-29")))


def test_podlet_lot() -> None:
    podlet_error("lot", "1..8 characters", lot="")
    podlet_error("lot", "1..8 characters", lot="123456789")
    podlet_error("lot", "printable ASCII", lot="L\n1")
    load_scenario(with_event(do="insert_podlet", podlet=dict(PODLET, lot="12345678")))


@pytest.mark.parametrize("key", list(PODLET))
def test_podlet_fields_required(key: str) -> None:
    podlet = {k: v for k, v in PODLET.items() if k != key}
    assert_error(with_event(do="insert_podlet", podlet=podlet), f"events[0].podlet.{key}", "required")


def test_podlet_rom_crc() -> None:
    out = load_scenario(with_event(do="insert_podlet", podlet=PODLET))
    assert out["events"][0]["podlet"]["rom_crc"] == "ok"
    for rom_crc in ("ok", "bad"):
        out = load_scenario(with_event(do="insert_podlet", podlet=dict(PODLET, rom_crc=rom_crc)))
        assert out["events"][0]["podlet"]["rom_crc"] == rom_crc
    podlet_error("rom_crc", "unknown rom_crc 'bda'", "did you mean 'bad'", rom_crc="bda")
    podlet_error("rom_crc", "must be a string naming the rom_crc", rom_crc=False)


def test_podlet_sign_and_unknown_key() -> None:
    podlet_error("sign", "unknown sign", sign="OK")
    podlet_error("colour", "unknown key", colour="red")
    assert_error(with_event(do="insert_podlet", podlet="0000c0ffee01"), "events[0].podlet",
                 "must be an object")


# ---- events ---------------------------------------------------------------------------------------

def test_unknown_event_message_example() -> None:
    events = [{"t_s": i, "do": "start_session"} for i in range(3)] + [{"t_s": 4, "do": "explode"}]
    assert str(error(base(events=events))).startswith("events[3].do: unknown event 'explode'")


def test_event_index_is_the_file_order_not_the_sorted_order() -> None:
    events = [{"t_s": 9, "do": "start_session"}, {"t_s": 1, "do": "fault", "fault": "nope"}]
    assert error(base(events=events)).field == "events[1].fault"


def test_unknown_fault_names_field_and_suggests() -> None:
    assert_error(with_event(do="fault", fault="boiler_ntc_opn"), "events[0].fault",
                 "unknown fault 'boiler_ntc_opn'", "did you mean 'boiler_ntc_open'")
    assert_error(with_event(do="clear_fault", fault="meltdown"), "events[0].fault",
                 "unknown fault 'meltdown'")
    assert_error(with_event(do="fault"), "events[0].fault", "required")


def test_event_t_s_range_and_type() -> None:
    assert_error(base(events=[{"do": "start_session"}]), "events[0].t_s", "required")
    assert_error(with_event(do="start_session", t_s=-1), "events[0].t_s", "out of range 0..900")
    assert_error(with_event(do="start_session", t_s=900.5), "events[0].t_s", "out of range 0..900")
    assert_error(with_event(do="start_session", t_s="1"), "events[0].t_s", "must be a number")
    assert_error(with_event(do="start_session", t_s=False), "events[0].t_s", "must be a number")
    load_scenario(with_event(do="start_session", t_s=900))


def test_event_do_required_and_typed() -> None:
    assert_error(base(events=[{"t_s": 1}]), "events[0].do", "required")
    assert_error(with_event(do=3), "events[0].do", "must be a string")
    assert_error(base(events=[[1, "start_session"]]), "events[0]", "must be an object")
    assert_error(base(events={}), "events", "must be a list")


@pytest.mark.parametrize("do", list(EVENTS))
def test_unknown_key_in_each_event_is_named(do: str) -> None:
    fields = {"podlet": PODLET, "profile": PROFILE, "epoch_s": 0, "ml": 1, "off_s": 1,
              "fault": "tip_over"}
    event = {f: fields[f] for f in EVENTS[do] if f in fields}
    e = error(with_event(do=do, speed=3, **event))
    assert e.field == "events[0].speed" and "unknown key" in e.message and do in e.message


def test_field_of_another_event_is_unknown() -> None:
    assert_error(with_event(do="start_session", podlet=PODLET), "events[0].podlet", "unknown key")


@pytest.mark.parametrize("do,field", [("insert_podlet", "podlet"), ("swap_podlet", "podlet"),
                                      ("install_profile", "profile"),
                                      ("set_clock", "epoch_s"), ("refill_water", "ml"),
                                      ("power_cut", "off_s"), ("fault", "fault"),
                                      ("clear_fault", "fault")])
def test_required_event_fields(do: str, field: str) -> None:
    assert_error(with_event(do=do), f"events[0].{field}", "required")


def test_press_button_ms() -> None:
    assert load_scenario(with_event(do="press_button", ms=600000))["events"][0]["ms"] == 600000
    assert_error(with_event(do="press_button", ms=0), "events[0].ms", "out of range 1..600000")
    assert_error(with_event(do="press_button", ms=600001), "events[0].ms", "out of range")
    assert_error(with_event(do="press_button", ms=100.0), "events[0].ms", "must be an integer")


def test_set_clock_epoch() -> None:
    load_scenario(with_event(do="set_clock", epoch_s=4102444800))
    assert_error(with_event(do="set_clock", epoch_s=4102444801), "events[0].epoch_s",
                 "out of range 0..4102444800")
    assert_error(with_event(do="set_clock", epoch_s=-1), "events[0].epoch_s", "out of range")
    assert_error(with_event(do="set_clock", epoch_s=1.5e9), "events[0].epoch_s", "must be an integer")


def test_refill_water_ml() -> None:
    load_scenario(with_event(do="refill_water", ml=300))
    load_scenario(with_event(do="refill_water", ml=12.5))
    assert_error(with_event(do="refill_water", ml=301), "events[0].ml", "out of range 0..300")
    assert_error(with_event(do="refill_water", ml=True), "events[0].ml", "must be a number")


def test_power_cut_off_s() -> None:
    load_scenario(with_event(do="power_cut", off_s=0))
    load_scenario(with_event(do="power_cut", off_s=86400))
    assert_error(with_event(do="power_cut", off_s=86400.5), "events[0].off_s", "out of range 0..86400")


def test_install_profile_event_checks_the_profile() -> None:
    assert_error(with_event(do="install_profile", profile=dict(PROFILE, version=-1)),
                 "events[0].profile.version", "out of range 0..65535")


def test_swap_podlet_checks_its_podlet() -> None:
    out = load_scenario(with_event(do="swap_podlet", podlet=PODLET))["events"][0]
    assert out["podlet"]["sign"] == "ok" and out["podlet"]["rom_crc"] == "ok"
    assert_error(with_event(do="swap_podlet", podlet=dict(PODLET, serial="xyz")),
                 "events[0].podlet.serial", "12 hex digits")
    assert_error(with_event(do="swap_podlet", podlet=dict(PODLET, rom_crc="meh")),
                 "events[0].podlet.rom_crc", "unknown rom_crc")


def test_profiles_limited_to_what_the_simulator_holds() -> None:
    many = [dict(PROFILE, version=1 + i) for i in range(MAX_PROFILES)]
    assert len(load_scenario(base(profiles=many))["profiles"]) == MAX_PROFILES
    assert_error(base(profiles=many + [PROFILE]), "profiles", f"at most {MAX_PROFILES}")
