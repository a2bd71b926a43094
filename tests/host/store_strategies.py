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
