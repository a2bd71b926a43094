"""Hypothesis strategies for podproto, one named function each, used by every test here."""
from __future__ import annotations

import datetime
import functools

from hypothesis import strategies as st

from podproto import logevents, messages, names, profile_v2
from podproto.codec import _INT_RANGE  # the field kinds' ranges, one definition
from podproto.link import MIN_PDU

ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def field_value(kind):
    """Any value a field of this kind may hold."""
    if isinstance(kind, tuple):
        return st.lists(record(kind[1]), max_size=4)
    if kind in _INT_RANGE:
        lo, hi = _INT_RANGE[kind]
        return st.integers(lo, hi)
    if kind == "s":
        return st.text(ASCII, max_size=24)
    if kind == "y":
        return st.binary(max_size=40)
    if kind == "Y":
        return st.binary(max_size=300)
    return st.binary(min_size=int(kind[1:]), max_size=int(kind[1:]))


def record(fields):
    return st.fixed_dictionaries({name: field_value(kind) for name, kind in fields})


@functools.cache
def message_of(entry):
    code, name, fields = entry
    header = st.fixed_dictionaries({
        "type": st.just(name),
        "id": st.integers(0, 255),
        "flags": st.integers(0, messages.FLAGS_KNOWN),
        "credits": st.integers(0, 0xFFFF),
    })
    trailer = st.fixed_dictionaries({"ctr": st.integers(0, 0xFFFFFFFF),
                                     "tag": st.binary(min_size=12, max_size=12)})
    return st.tuples(header, record(fields), trailer).map(
        lambda h: {**h[0], **h[1], **(h[2] if h[0]["flags"] & messages.FLAG_MAC else {})})


@functools.cache
def messages_any():
    """Any valid message of any type in the table."""
    return st.one_of([message_of(e) for e in messages.TABLE])


def bit_flip(data: bytes):
    """data with one bit flipped (data must not be empty)."""
    return st.integers(0, len(data) * 8 - 1).map(
        lambda i: data[:i // 8] + bytes([data[i // 8] ^ (1 << (i % 8))]) + data[i // 8 + 1:])


def max_pdus():
    return st.integers(MIN_PDU, 244)


@functools.cache
def profiles():
    """Profiles inside the hardware envelope, of format 1 or 2."""
    return st.one_of(profiles_v1(), profiles_v2())


@functools.cache
def profiles_v2():
    """Format-2 profiles (course, pattern, warnings) inside the hardware envelope."""
    return profiles_v1().flatmap(lambda p: st.tuples(
        st.integers(1, 24), st.integers(0, 31536000), st.integers(0, 31536000),
        st.integers(0, 63072000), _patterns(p), _warnings()).map(
            lambda t: dict(p, course_sessions=t[0], min_spacing_s=t[1],
                           recommended_spacing_s=max(t[1], t[2]),
                           maintenance_spacing_s=max(t[3], t[1]) if t[3] else 0,
                           **t[4], **t[5])))


def _patterns(p):
    """A delivery pattern that fits profile p's rate and session."""
    def pulsed(period_s):
        most = min(2000, p["max_session_ul"], p["dose_rate_ul_min"] * period_s // 60)
        if most < 1:
            return st.just({"pattern": "continuous"})
        return st.integers(1, most).map(lambda bolus: {
            "pattern": "pulsed", "bolus_ul": bolus, "period_s": period_s})
    return st.one_of(
        st.just({"pattern": "continuous"}),
        st.integers(2, min(600, p["session_s"])).flatmap(pulsed),
        st.integers(1, p["session_s"]).map(lambda r: {"pattern": "ramped", "ramp_s": r}))


def _warnings():
    warning = st.fixed_dictionaries({
        "code": st.sampled_from(names.WARNING_CODES[1:]),
        "text": st.text(ASCII, min_size=1, max_size=profile_v2.WARNING_TEXT_MAX)})
    return st.lists(warning, max_size=profile_v2.WARNINGS_MAX).flatmap(
        lambda ws: st.booleans().map(lambda ack: {"warnings": ws,
                                                   "acknowledge": ack and bool(ws)}))


@functools.cache
def profiles_v1():
    """Format-1 profiles inside the hardware envelope."""
    return st.integers(1, 20000).flatmap(lambda session_ul: st.fixed_dictionaries({
        "podlet_type": st.integers(0, 255),
        "version": st.integers(0, 65535),
        "name": st.text(ASCII, min_size=1, max_size=24),
        "outlet_target_mc": st.integers(30000, 55000),
        "session_s": st.integers(10, 3600),
        "dose_rate_ul_min": st.integers(1, 2000),
        "max_session_ul": st.just(session_ul),
        "max_day_ul": st.integers(session_ul, 100000),
        "min_interval_s": st.integers(0, 86400),
    }))


@functools.cache
def podlets():
    return st.fixed_dictionaries({
        "serial": st.integers(0, 2 ** 48 - 1).map(lambda s: "%012x" % s),
        "podlet_type": st.integers(0, 255),
        "capacity_ul": st.integers(0, 2 ** 32 - 1),
        "expiry": st.dates(min_value=datetime.date(2000, 1, 1),
                           max_value=datetime.date(2179, 6, 1)).map(str),
        "lot": st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E),
                       min_size=1, max_size=8),
    })


def _log_field(kind):
    if kind[0] == "s":
        return st.one_of(st.none(), st.text(ASCII, max_size=int(kind[1:]) + 4))
    if kind[0] == "x":
        n = int(kind[1:])
        return st.one_of(st.none(), st.binary(min_size=n, max_size=n).map(bytes.hex),
                         st.text("0123456789abcdefg", max_size=2 * n + 1))
    return st.one_of(st.none(), st.integers(-2 ** 33, 2 ** 33),
                     st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3)))


@st.composite
def journal_records(draw):
    """A journal record as the firmware appends it, of any event (or one unknown to
    logevents), with any field values, in or out of what its layout can carry."""
    name = draw(st.one_of(st.sampled_from(logevents.EVENT_NAMES[1:]),
                          st.text(ASCII, min_size=1, max_size=40)))
    rec = {"event": name, "t": draw(st.one_of(st.none(), st.integers(-1, 2 ** 32))),
           "t_ms": draw(st.integers(0, 2 ** 40))}
    for field, kind, _scale in logevents.LAYOUTS.get(name, ()):
        rec[field] = draw(_log_field(kind))
    return rec
