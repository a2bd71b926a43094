"""Treatment courses (profile format 2) for people: where the user is in a podlet type's
course, when the next session is allowed and when it is recommended, what was missed,
the plan as an .ics calendar, the session history grouped by course, and a profile's
warnings and delivery pattern in words. Used by `steamer course` and `steamer sessions
--by-course` (steamer.cli) and by `steamer mfg verify`; any app can import it.

A course is counted from the history: every session of the podlet type, oldest first;
the first `course_sessions` are the initial series, the ones after maintenance. The
device enforces the minimum spacing itself (on its own clock); what is said here of it
is what the history shows.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable

from podproto import profile as profile_fmt

DAY_S = 86400
# What each warning code (podproto.names.WARNING_CODES) is about, in words.
WARNING_TOPICS = {
    "pregnancy": "pregnancy and nursing",
    "kidney": "kidney function",
    "sun_sensitivity": "sensitivity to the sun",
    "allergy_test": "an allergy test first",
    "other": "other",
}


def is_course(p: dict) -> bool:
    """True for a profile dict of format 2 (it carries a course, pattern and warnings)."""
    return profile_fmt.is_v2(p)


def warning_lines(p: dict) -> list[str]:
    """Each warning of profile p as a line: its topic, then its text."""
    return [f"{WARNING_TOPICS.get(w['code'], w['code'])}: {w['text']}"
            for w in p.get("warnings", [])]


def pattern_text(p: dict) -> str:
    """The delivery pattern of profile p in words (v1 profiles are continuous)."""
    rate = p["dose_rate_ul_min"]
    kind = p.get("pattern", "continuous")
    if kind == "pulsed":
        return (f"pulsed: a bolus of {p['bolus_ul']} µl (at {rate} µl/min) every "
                f"{p['period_s']} s")
    if kind == "ramped":
        return f"ramped: the rate rises to {rate} µl/min over the first {p['ramp_s']} s"
    return f"continuous at {rate} µl/min"


def days(s: float) -> str:
    d = s / DAY_S
    return f"{d:.0f} day{'s' if round(d) != 1 else ''}" if d >= 1 else f"{s / 3600:.1f} h"


def course_text(p: dict) -> str:
    """The course of profile p in words."""
    n = p.get("course_sessions", 1)
    text = (f"{n} session{'s' if n != 1 else ''} at least {days(p.get('min_spacing_s', 0))} "
            f"apart ({days(p.get('recommended_spacing_s', 0))} recommended)")
    if p.get("maintenance_spacing_s"):
        text += f", then one every {days(p['maintenance_spacing_s'])}"
    return text


@dataclass
class Position:
    """Where the user is in a course at `now_s`; times are epoch seconds."""
    sessions: int                  # in the initial series
    done: int                      # sessions so far, all of them
    next_number: int               # the next session's number (1-based, all of them)
    maintenance: bool              # the next one is after the initial series
    last_s: float | None
    next_allowed_s: float | None   # None: now
    next_recommended_s: float | None   # None: nothing more is planned
    overdue_s: float               # how long ago the next recommended time passed
    late: list[tuple[int, float]] = field(default_factory=list)   # (number, s late)

    @property
    def label(self) -> str:
        if not self.maintenance:
            return f"session {self.next_number} of {self.sessions}"
        return (f"maintenance session {self.next_number - self.sessions} (the series of "
                f"{self.sessions} is done)")

    def missed(self) -> list[str]:
        """What was missed, in words: the recommended time passed, sessions taken late."""
        out = []
        if self.overdue_s > 0:
            out.append(f"the recommended time for {self.label} passed {days(self.overdue_s)} ago")
        out += [f"session {n} came {days(s)} after its recommended time" for n, s in self.late]
        return out


def position(p: dict, starts_s: Iterable[float], now_s: float) -> Position:
    """Where the user is in profile p's course, given the start times of the sessions
    of its podlet type so far."""
    starts = sorted(starts_s)
    n = p.get("course_sessions", 1)
    spacing = p.get("min_spacing_s", 0)
    done = len(starts)
    maintenance = done >= n
    late = []
    for i in range(1, done):
        want = p.get("recommended_spacing_s", 0) if i < n else p.get("maintenance_spacing_s", 0)
        gap = starts[i] - starts[i - 1] - want
        if want and gap > DAY_S:
            late.append((i + 1, gap))
    if not starts:
        return Position(n, 0, 1, False, None, None, now_s, 0.0, late)
    last = starts[-1]
    allowed = last + spacing if spacing and last + spacing >= now_s else None
    every = p.get("maintenance_spacing_s", 0) if maintenance else p.get("recommended_spacing_s", 0)
    recommended = last + every if (every or not maintenance) else None
    overdue = now_s - recommended if recommended is not None and now_s > recommended + DAY_S else 0.0
    return Position(n, done, done + 1, maintenance, last, allowed, recommended, overdue, late)


def plan_dates(p: dict, pos: Position, now_s: float, maintenance: int = 2) -> list[tuple[int, float]]:
    """(session number, epoch s) of the sessions still planned: the rest of the initial
    series at the recommended spacing from the next recommended time (or from when the
    next is allowed, if that has passed), then `maintenance` maintenance sessions."""
    n = pos.sessions
    every = p.get("recommended_spacing_s", 0)
    upkeep = p.get("maintenance_spacing_s", 0)
    t = pos.next_recommended_s if pos.next_recommended_s is not None else now_s
    t = max(t, now_s, pos.next_allowed_s or 0)
    out = []
    number = pos.next_number
    while number <= n:
        out.append((number, t))
        number += 1
        t += every
    if upkeep:
        if number > pos.next_number:
            t += upkeep - every
        for _ in range(maintenance):
            out.append((number, t))
            number += 1
            t += upkeep
    return out


def _ics_date(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.timezone.utc).strftime("%Y%m%d")


def _ics_text(s: str) -> str:
    return s.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> list[str]:
    """An iCalendar content line folded at 75 octets (RFC 5545 3.1), whole characters."""
    out, cur = [], ""
    for ch in line:
        if len((cur + ch).encode()) > (75 if not out else 74):
            out.append(cur)
            cur = ""
        cur += ch
    return [out[0]] + [" " + x for x in out[1:]] + [" " + cur] if out else [cur]


def ics(p: dict, pos: Position, now_s: float, maintenance: int = 2) -> str:
    """The plan as an iCalendar (RFC 5545) file: an all-day event per planned session."""
    stamp = dt.datetime.fromtimestamp(now_s, dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//podlet steamer//steamer course//EN",
             "CALSCALE:GREGORIAN"]
    for number, t in plan_dates(p, pos, now_s, maintenance):
        what = (f"session {number} of {pos.sessions}" if number <= pos.sessions
                else f"maintenance session {number - pos.sessions}")
        day = _ics_date(t)
        end = _ics_date(t + DAY_S)
        lines += ["BEGIN:VEVENT",
                  f"UID:steamer-{p['podlet_type']}-{p['version']}-{number}@podlet-steamer",
                  f"DTSTAMP:{stamp}", f"DTSTART;VALUE=DATE:{day}", f"DTEND;VALUE=DATE:{end}",
                  "SUMMARY:" + _ics_text(f"{p['name']}: {what}"),
                  "DESCRIPTION:" + _ics_text(f"{course_text(p)}. Delivery {pattern_text(p)}."),
                  "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(part + "\r\n" for line in lines for part in _fold(line))


@dataclass
class CourseGroup:
    """Sessions of one course in the history: one podlet type and profile name."""
    podlet_type: int | None
    profile: str | None
    sessions: list = field(default_factory=list)   # steamer.store.Session, oldest first


def group_by_course(sessions: Iterable) -> list[CourseGroup]:
    """The history's sessions (steamer.store.Session) grouped by course (podlet type and
    profile name), each group oldest first, groups by their first session."""
    groups: dict[tuple, CourseGroup] = {}
    for s in sorted(sessions, key=lambda s: (s.start_epoch_s or 0, s.id)):
        key = (s.podlet_type, s.profile)
        if key not in groups:
            groups[key] = CourseGroup(s.podlet_type, s.profile)
        groups[key].sessions.append(s)
    return list(groups.values())


def starts_of(sessions: Iterable, podlet_type: int) -> list[float]:
    """The start times of the history's sessions of podlet_type (those with a time)."""
    return sorted(s.start_epoch_s for s in sessions
                  if s.podlet_type == podlet_type and s.start_epoch_s is not None)


def view(p: dict, sessions: Iterable, now_s: float, ack: Any = None) -> dict:
    """Profile p's course as JSON-ready data, from the history's sessions
    (steamer.store.Session) at now_s: where the user is, when the next session is
    allowed and recommended (epoch s, None: now / nothing planned), what was missed, the
    course, pattern and warnings in words, and the warnings' acknowledgement (ack, a
    steamer.store.Acknowledgement or None). What `steamer course --json` prints and the
    app's course view shows."""
    pos = position(p, starts_of(sessions, p["podlet_type"]), now_s)
    must = bool(p.get("acknowledge", False))
    return {
        "profile": p["name"], "version": p["version"], "podlet_type": p["podlet_type"],
        "position": pos.label, "sessions": pos.sessions, "done": pos.done,
        "maintenance": pos.maintenance, "last_s": pos.last_s,
        "next_allowed_s": pos.next_allowed_s, "next_recommended_s": pos.next_recommended_s,
        "missed": pos.missed(), "course_text": course_text(p),
        "pattern_text": pattern_text(p), "warnings": p.get("warnings", []),
        "warning_lines": warning_lines(p), "acknowledge": must,
        "acknowledged_s": None if ack is None else ack.epoch_s,
        "acknowledged_address": None if ack is None else ack.address,
        "plan": [{"number": n, "epoch_s": t} for n, t in plan_dates(p, pos, now_s)]}
