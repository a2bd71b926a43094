"""Validates a simulator scenario (docs: /work/shared/spec/sim.md, contract 1) and fills in
its defaults, so the firmware's runner only ever sees a complete, well-formed scenario.

    >>> s = load_scenario('{"duration_s": 60, "events": [{"t_s": 1, "do": "start_session"}]}')
    >>> s["plant"]["ambient_c"], s["seed"]
    (22.0, 0)

Every error is a ScenarioError whose str is one line naming the field, e.g.
``events[3].do: unknown event 'explode'``. The ranges here are what the scenario can
encode, not what the firmware accepts: a scenario must be able to present a profile the
firmware will refuse (an outlet target of 70 C, say).
"""
from __future__ import annotations

import copy
import datetime
import difflib
import json
import math
import re
from pathlib import Path
from typing import Any, Callable

from podproto.names import WARNING_CODES
from podproto.profile_v2 import PATTERNS
from steamer.inputs import InputTooLarge, read_input

CONTRACT = 1
# The largest scenario file read (demo.json is 800 bytes; a day of events is far less).
SCENARIO_MAX_BYTES = 4 << 20

FAULTS = (
    "boiler_ntc_open", "boiler_ntc_short", "boiler_ntc_frozen",
    "outlet_ntc_open", "outlet_ntc_short", "outlet_ntc_frozen",
    "heater_stuck_on", "heater_open", "pump_stall", "water_empty",
    "tip_over", "podlet_bus_error", "loop_stall",
    # Our addition (the contract allows adding): the pump runs at its fastest whatever
    # it is told.
    "pump_runaway",
)

SIGNS = ("ok", "none", "wrong_key", "tamper")

# A podlet's ROM ID CRC-8 as the chip sends it: "bad" presents a corrupted read.
ROM_CRCS = ("ok", "bad")

# Kept equal to boards/sim/plant.py SCENARIO_DEFAULTS (a test checks it).
PLANT_DEFAULTS = {
    "ambient_c": 22.0,
    "water_ml": 150.0,
    "heater_w": 400.0,
    "mains_pct": 100.0,
    "noise_pct": 100.0,
}

# Hidden parameters of the appliance: optional (a scenario that leaves them out has the
# plant's defaults, which the firmware's model assumes); a scenario sets others to try a
# unit the model is wrong about. Kept equal to plant.py HIDDEN_DEFAULTS (a test checks it).
HIDDEN_PLANT_DEFAULTS = {
    "nozzle_half_w": 430.0,
    "loss_w_per_k": 0.40,
    "metal_j_per_k": 100.0,
    "boiler_sensor_tau_s": 2.0,
    "outlet_sensor_tau_s": 1.5,
    "nozzle_tau_s": 4.0,
}

HIDDEN_PLANT_KEYS = tuple(HIDDEN_PLANT_DEFAULTS)

# What a scenario's `plant` may set, each (least, most).
PLANT_RANGES = {
    "ambient_c": (-10, 45),
    "water_ml": (0, 300),
    "heater_w": (100, 1000),
    "mains_pct": (80, 115),
    "noise_pct": (0, 100),
    # Each hidden parameter within half and one and a half times its default.
    "nozzle_half_w": (215, 645),
    "loss_w_per_k": (0.2, 0.6),
    "metal_j_per_k": (50, 150),
    "boiler_sensor_tau_s": (1.0, 3.0),
    "outlet_sensor_tau_s": (0.75, 2.25),
    "nozzle_tau_s": (2.0, 6.0),
}

_MAX_SEED = 2**31 - 1
_MAX_DURATION_S = 86400
_MAX_EPOCH_S = 4102444800  # 2100-01-01
# Profiles are all installed before t=0, their signature checks queued at once: this many
# fit the simulator's heap (events are streamed to it, so they have no limit).
MAX_PROFILES = 64

_HEX12 = re.compile(r"[0-9a-fA-F]{12}\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


class ScenarioError(ValueError):
    """An invalid scenario: `field` is a path such as ``events[3].do``."""

    def __init__(self, field: str, message: str):
        super().__init__(field, message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


# ---- value checkers: each takes (value, field) and returns the normalized value ---------

def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (str, bool)) or value is None else repr(value)


def _number(lo: float, hi: float) -> Callable[[Any, str], Any]:
    def check(value: Any, field: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(field, f"must be a number, got {_type_name(value)} {_show(value)}")
        if not math.isfinite(value):
            raise ScenarioError(field, f"must be a finite number, got {value}")
        if not lo <= value <= hi:
            raise ScenarioError(field, f"{value} is out of range {lo}..{hi}")
        return value
    return check


def _integer(lo: int, hi: int) -> Callable[[Any, str], int]:
    def check(value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(field, f"must be an integer, got {_type_name(value)} {_show(value)}")
        if not lo <= value <= hi:
            raise ScenarioError(field, f"{value} is out of range {lo}..{hi}")
        return value
    return check


def _ascii(min_len: int, max_len: int) -> Callable[[Any, str], str]:
    def check(value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise ScenarioError(field, f"must be a string, got {_type_name(value)} {_show(value)}")
        if not min_len <= len(value) <= max_len:
            raise ScenarioError(field, f"{_show(value)} must be {min_len}..{max_len} characters long")
        bad = [c for c in value if not " " <= c <= "~"]
        if bad:
            raise ScenarioError(field, f"{_show(value)} has a character that is not printable ASCII: {bad[0]!r}")
        return value
    return check


def _choice(kind: str, names: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise ScenarioError(field, f"must be a string naming the {kind}, got {_type_name(value)} {_show(value)}")
        if value not in names:
            close = difflib.get_close_matches(value, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (one of: {', '.join(names)})"
            raise ScenarioError(field, f"unknown {kind} '{value}'{hint}")
        return value
    return check


def _serial(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _HEX12.match(value):
        raise ScenarioError(field, f"{_show(value)} is not 12 hex digits (a 48-bit serial)")
    return value.lower()


def _date(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _DATE.match(value):
        raise ScenarioError(field, f"{_show(value)} is not a date YYYY-MM-DD")
    try:
        datetime.date.fromisoformat(value)
    except ValueError as e:
        raise ScenarioError(field, f"{_show(value)} is not a valid date ({e})") from None
    return value


_REQUIRED = object()
_OPTIONAL = object()    # left out of the output when the input leaves it out


def _boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(field, f"must be true or false, got {_type_name(value)} {_show(value)}")
    return value


def _list_of(item: Callable[[Any, str], Any], most: int) -> Callable[[Any, str], list]:
    def check(value: Any, field: str) -> list:
        if not isinstance(value, list) or len(value) > most:
            raise ScenarioError(field, f"must be a list of at most {most}, got {_show(value)}")
        return [item(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return check

# Object schemas: key -> (checker, default or _REQUIRED). Key order is the output order.
_PROFILE = {
    "podlet_type": (_integer(0, 255), _REQUIRED),
    "version": (_integer(0, 65535), _REQUIRED),
    "name": (_ascii(1, 24), _REQUIRED),
    "outlet_target_c": (_number(0, 100), _REQUIRED),
    "session_s": (_integer(0, 86400), _REQUIRED),
    "dose_rate_ul_min": (_integer(0, 100000), _REQUIRED),
    "max_session_ul": (_integer(0, 1000000), _REQUIRED),
    "max_day_ul": (_integer(0, 1000000), _REQUIRED),
    "min_interval_s": (_integer(0, 604800), _REQUIRED),
    # Format 2 (podproto.profile_v2: a course, a delivery pattern, warnings); any of
    # these makes the profile one. As above: form and encodable range only.
    "format": (_integer(1, 2), _OPTIONAL),
    "course_sessions": (_integer(0, 255), _OPTIONAL),
    "min_spacing_s": (_integer(0, 2 ** 32 - 1), _OPTIONAL),
    "recommended_spacing_s": (_integer(0, 2 ** 32 - 1), _OPTIONAL),
    "maintenance_spacing_s": (_integer(0, 2 ** 32 - 1), _OPTIONAL),
    "pattern": (_choice("pattern", PATTERNS), _OPTIONAL),
    "bolus_ul": (_integer(0, 65535), _OPTIONAL),
    "period_s": (_integer(0, 65535), _OPTIONAL),
    "ramp_s": (_integer(0, 65535), _OPTIONAL),
    "warnings": (_list_of(lambda v, f: _check_object(v, f, _WARNING), 255), _OPTIONAL),
    "acknowledge": (_boolean, _OPTIONAL),
    "sign": (_choice("sign", SIGNS), "ok"),
}

_WARNING = {
    "code": (_choice("warning code", WARNING_CODES[1:]), _REQUIRED),
    "text": (_ascii(1, 255), _REQUIRED),
}

_PODLET = {
    "serial": (_serial, _REQUIRED),
    "podlet_type": (_integer(0, 255), _REQUIRED),
    "capacity_ul": (_integer(0, 1000000), _REQUIRED),
    "expiry": (_date, _REQUIRED),
    "lot": (_ascii(1, 8), _REQUIRED),
    "sign": (_choice("sign", SIGNS), "ok"),
    "rom_crc": (_choice("rom_crc", ROM_CRCS), "ok"),
}


def _float(check: Callable[[Any, str], Any]) -> Callable[[Any, str], float]:
    return lambda value, field: float(check(value, field))


_PLANT = {key: (_float(_number(*PLANT_RANGES[key])), default)
          for key, default in [*PLANT_DEFAULTS.items(),
                               *((k, _OPTIONAL) for k in HIDDEN_PLANT_KEYS)]}


def _object(schema: dict) -> Callable[[Any, str], dict]:
    def check(value: Any, field: str) -> dict:
        return _check_object(value, field, schema)
    return check


def _check_object(value: Any, field: str, schema: dict, what: str = "") -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(field, f"must be an object, got {_type_name(value)}")
    for key in value:
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ScenarioError(_join(field, key), f"unknown key{what}{hint}")
    out = {}
    for key, (check, default) in schema.items():
        sub = _join(field, key)
        if key in value:
            out[key] = check(value[key], sub)
        elif default is _REQUIRED:
            raise ScenarioError(sub, f"required{what}")
        elif default is not _OPTIONAL:
            out[key] = copy.deepcopy(default)
    return out


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


# Fields by `do`; every event also has t_s and do.
_EVENT_FIELDS = {
    "insert_podlet": {"podlet": (_object(_PODLET), _REQUIRED)},
    # Ours: the podlet in the slot replaced by this one in one instant, its presence
    # never dropping (a swap the firmware sees no edge of); with none in, an insertion.
    "swap_podlet": {"podlet": (_object(_PODLET), _REQUIRED)},
    "remove_podlet": {},
    "start_session": {},
    "stop_session": {},
    "press_button": {"ms": (_integer(1, 600000), 100)},
    "install_profile": {"profile": (_object(_PROFILE), _REQUIRED)},
    "set_clock": {"epoch_s": (_integer(0, _MAX_EPOCH_S), _REQUIRED)},
    # Ours: a paired host acknowledges the warnings of this profile (format 2).
    "acknowledge_warnings": {"podlet_type": (_integer(0, 255), _REQUIRED),
                             "version": (_integer(0, 65535), _REQUIRED)},
    "refill_water": {"ml": (_number(0, 300), _REQUIRED)},
    "power_cut": {"off_s": (_number(0, 86400), _REQUIRED)},
    "fault": {"fault": (_choice("fault", FAULTS), _REQUIRED)},
    "clear_fault": {"fault": (_choice("fault", FAULTS), _REQUIRED)},
}

# What each event (`do`) carries besides t_s, for tools that build scenarios.
EVENTS: dict[str, tuple[str, ...]] = {do: tuple(fields) for do, fields in _EVENT_FIELDS.items()}
_EVENT_NAMES = tuple(EVENTS)


def _check_event(value: Any, field: str, duration_s: float) -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(field, f"must be an object, got {_type_name(value)}")
    if "do" not in value:
        raise ScenarioError(_join(field, "do"), "required")
    do = _choice("event", _EVENT_NAMES)(value["do"], _join(field, "do"))
    schema = {"t_s": (_number(0, duration_s), _REQUIRED), "do": (lambda v, f: v, _REQUIRED)}
    schema.update(_EVENT_FIELDS[do])
    return _check_object(value, field, schema, f" for {do}")


def _check_list(value: Any, field: str, item: Callable[[Any, str], dict]) -> list:
    if not isinstance(value, list):
        raise ScenarioError(field, f"must be a list, got {_type_name(value)}")
    return [item(v, f"{field}[{i}]") for i, v in enumerate(value)]


_TOP_KEYS = ("contract", "duration_s", "seed", "plant", "profiles", "events")


def _check_scenario(raw: Any, seed_override: int | None) -> dict:
    if not isinstance(raw, dict):
        raise ScenarioError("scenario", f"must be a JSON object, got {_type_name(raw)}")
    for key in raw:
        if key not in _TOP_KEYS:
            close = difflib.get_close_matches(key, _TOP_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ScenarioError(key, f"unknown key{hint}")
    contract = raw.get("contract", CONTRACT)
    if isinstance(contract, bool) or contract != CONTRACT:
        raise ScenarioError("contract", f"{_show(contract)} is not supported (this simulator speaks contract {CONTRACT})")
    if "duration_s" not in raw:
        raise ScenarioError("duration_s", "required")
    duration_s = _number(1, _MAX_DURATION_S)(raw["duration_s"], "duration_s")
    seed = _integer(0, _MAX_SEED)(raw.get("seed", 0), "seed")
    if seed_override is not None:
        seed = _integer(0, _MAX_SEED)(seed_override, "seed")
    plant = _check_object(raw.get("plant", {}), "plant", _PLANT)
    profiles = _check_list(raw.get("profiles", []), "profiles", _object(_PROFILE))
    if len(profiles) > MAX_PROFILES:
        raise ScenarioError("profiles", f"{len(profiles)} profiles: at most {MAX_PROFILES}")
    events = _check_list(raw.get("events", []), "events",
                         lambda v, f: _check_event(v, f, duration_s))
    events.sort(key=lambda ev: ev["t_s"])  # stable: same-time events keep file order
    return {"contract": CONTRACT, "duration_s": duration_s, "seed": seed, "plant": plant,
            "profiles": profiles, "events": events}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise ScenarioError("scenario", f"duplicate key '{key}' in JSON")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ScenarioError("scenario", f"not valid JSON ({name} is not a JSON number)")


def _parse(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ScenarioError("scenario", f"not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None


def load_scenario(path_or_text: str | Path | dict, seed_override: int | None = None) -> dict:
    """The normalized scenario (every default filled in, events sorted by t_s, stably)
    from a file path, JSON text or an already parsed dict (left untouched).

    Raises ScenarioError naming the first invalid field.
    """
    if isinstance(path_or_text, dict):
        raw = path_or_text
    elif isinstance(path_or_text, Path) or not path_or_text.lstrip().startswith(("{", "[")):
        try:
            text = read_input(path_or_text, SCENARIO_MAX_BYTES, "a scenario").decode("utf-8")
        except InputTooLarge as e:
            raise ScenarioError("scenario", f"cannot read '{path_or_text}': {e.reason}") from None
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ScenarioError("scenario", f"cannot read '{path_or_text}': {reason}") from None
        raw = _parse(text)
    else:
        raw = _parse(path_or_text)
    return _check_scenario(raw, seed_override)
