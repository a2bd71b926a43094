"""Hypothesis strategies for the session store, one named function each."""
from __future__ import annotations

from hypothesis import strategies as st

SERIALS = ("0000c0ffee01", "0000c0ffee02")
REASONS = ("completed", "max_session", "stopped", "podlet_removed", "fault", "podlet_empty")


def temperature_c() -> st.SearchStrategy[float]:
    return st.floats(-5, 130, allow_nan=False).map(lambda c: round(c, 2))


def started_payload(t_ms: int) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({
        "podlet": st.sampled_from(SERIALS), "podlet_type": st.integers(1, 5),
        "target_c": st.sampled_from([40.0, 45.0, 50.5]),
        "profile": st.sampled_from(["vitamin-c", "hyaluron", None]),
        "version": st.integers(1, 3) | st.none(),
        "t": st.just(1_795_000_000 + t_ms / 1000) | st.none(),
        "t_ms": st.just(t_ms)})


def sample_payload(t_ms: int) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({
        "t_ms": st.just(t_ms), "boiler_c": temperature_c(), "outlet_c": temperature_c(),
        "heater_pct": st.integers(0, 100).map(float), "pump_ul_min": st.sampled_from([0.0, 300.0]),
        "session_ul": st.integers(0, 3000).map(float)})


def ended_payload(t_ms: int) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({
        "reason": st.sampled_from(REASONS), "session_ul": st.integers(0, 3000).map(float),
        "t": st.just(1_795_000_000 + t_ms / 1000) | st.none(), "t_ms": st.just(t_ms)})


@st.composite
def device_log(draw: st.DrawFn, max_records: int = 40) -> list[dict]:
    """A device's log, seq 1..N: kinds in any order (sessions without an end, samples and
    ends outside a session, unknown kinds), not only the orderly ones."""
    kinds = draw(st.lists(st.sampled_from(
        ["session_started", "sample", "sample", "sample", "session_ended", "boot"]),
        min_size=1, max_size=max_records))
    out = []
    for i, kind in enumerate(kinds):
        t_ms = 1000 * i
        if kind == "session_started":
            payload = draw(started_payload(t_ms))
        elif kind == "sample":
            payload = draw(sample_payload(t_ms))
        elif kind == "session_ended":
            payload = draw(ended_payload(t_ms))
        else:
            payload = {"t_ms": t_ms, "reason": "power_on"}
        out.append({"seq": i + 1, "kind": kind, "payload": payload})
    return out


@st.composite
def deliveries(draw: st.DrawFn, records: list[dict]) -> list[list[dict]]:
    """The records as a link might deliver them: every one at least once, some again,
    in any order, cut into batches."""
    extra = draw(st.lists(st.sampled_from(records), max_size=len(records)))
    stream = draw(st.permutations(records + extra))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=5)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:]) if a < b]


# JSON text a trace line may hold where a number or a string belongs: the sim's own
# values and what no simulator writes (out of range, not JSON, nested, not Unicode).
NASTY_JSON = ("0", "1", "-1", "45.0", "2500.0", "1e308", "-1e308", "1e400", "NaN",
              "Infinity", "-Infinity", "1" * 30, "1" * 5000, "9007199254740992",
              "9007199254740993", "4294967296", "1e15", "true", "null", '"x"', '""',
              '"\\ud800"', '"' + "p" * 300 + '"', "[" * 3000 + "]" * 3000,
              '{"a": ' * 12 + "1" + "}" * 12, "[[[1]]]", "{}")


def nasty_json() -> st.SearchStrategy[str]:
    return (st.sampled_from(NASTY_JSON)
            | st.integers(-2**70, 2**70).map(str)
            | st.floats(allow_nan=False, allow_infinity=False).map(repr))


def _obj(fields: dict[str, str]) -> str:
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


# Where nasty_json goes: (line, key); a line's "fw" keys are "fw.KEY".
_TRACE_TEMPLATE = [
    {"t_ms": "0", "event": '"boot"', "reason": '"power_on"', "board": '"sim"'},
    {"t_ms": "500", "podlet_type": "3", "event": '"profile_installed"', "name": '"vitamin-c"',
     "version": "1"},
    {"t_ms": "3000", "podlet_type": "3", "target_c": "45.0", "event": '"session_started"',
     "podlet": '"0000c0ffee01"'},
    *({"t_ms": str(3000 + 500 * i), "state": '"steaming"',
       "fw": {"boiler_c": "99.5", "outlet_c": "45.1", "heater_pct": "60", "pump_ul_min": "300",
              "session_ul": str(2.5 * i), "fault": "null"}} for i in range(6)),
    {"t_ms": "6000", "state": '"off"', "fw": "null"},
    {"t_ms": "9000", "event": '"session_ended"', "reason": '"stopped"', "session_ul": "12.5"},
]


@st.composite
def fuzzed_trace(draw: st.DrawFn) -> str:
    """A small trace of one session (its power cut, an end) with nasty_json put in for
    a few of its values, or as extra keys."""
    lines = [{k: (dict(v) if isinstance(v, dict) else v) for k, v in line.items()}
             for line in _TRACE_TEMPLATE]
    for _ in range(draw(st.integers(1, 3))):
        line = draw(st.sampled_from(lines))
        keys = [k for k in line if k != "fw"] + ["extra"]
        if isinstance(line.get("fw"), dict):
            keys += [f"fw.{k}" for k in line["fw"]]
        key = draw(st.sampled_from(keys))
        value = draw(nasty_json())
        if key.startswith("fw."):
            line["fw"][key[3:]] = value
        else:
            line[key] = value
    return "".join(_obj({k: _obj(v) if isinstance(v, dict) else v for k, v in line.items()})
                   + "\n" for line in lines)


def start_epoch_arg() -> st.SearchStrategy[list[str]]:
    """The --start-epoch-s option of import-trace, or none (the file's time)."""
    return st.sampled_from([[], ["--start-epoch-s", "1795000000"], ["--start-epoch-s", "0"],
                            ["--start-epoch-s", "4294967290"], ["--start-epoch-s", "1e15"],
                            ["--start-epoch-s", "-1"], ["--start-epoch-s", "nan"],
                            ["--start-epoch-s", "inf"]])
