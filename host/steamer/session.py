"""The consumer's session library: what `steamer`'s commands (steamer.cli.consumer) and
other programs (steamer_mfg's provisioning, the bench) do with a connected steamer beyond
steamer.client's messages: pair once its window opens, read the status as a person's view
(the session's limits, the podlet's state), draw a session's progress, find a journal
record, sync the log into a store, and the lines those commands print about it.
"""
from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import IO, Any, Callable

from bleak.exc import BleakError

from podproto.names import (FAULT_NAMES, PODLET_REASONS, PODLET_STATES, READY_MC,
                            SESSION_STATES, UNIT_NAMES)
from steamer.client import LinkLost, Steamer, SteamerError, SyncResult
from steamer.devices import DeviceError, explain, last_record, read_info, state_name
from steamer.store import DeviceSink, Store

READY_C = READY_MC / 1000     # the firmware's preheat ends here
# Session ends at one of the session's limits: its whole dose was delivered.
FULL_ENDS = ("completed", "max_session", "podlet_empty", "max_day")


def say_if_created(store: Store) -> None:
    """A command that writes creates the database (and its folders) where it was told
    to; it says so, so that a mistyped path shows."""
    if store.created:
        print(f"created the session database {store.path}", file=sys.stderr)


# A pairing attempt the steamer refuses (its window is shut) is answered in one round
# trip; one still going after this long is exchanging keys.
EXCHANGING_AFTER_S = 1.5
PAIR_EXCHANGE_S = 10     # about how long a steamer takes to exchange keys


async def pair_until(st: Steamer, name: str, timeout_s: float,
                     on_phase: Callable[[str, float], None] | None = None) -> None:
    """Pairs once the steamer's pairing window opens, retrying until timeout_s.
    on_phase(phase, left_s) hears "waiting" before each attempt and "exchanging" once an
    attempt outlasts a refusal (the window is open, the keys are being exchanged)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if on_phase is None:
                await st.pair()
                return
            on_phase("waiting", deadline - time.monotonic())
            attempt = asyncio.ensure_future(st.pair())
            done, _ = await asyncio.wait({attempt}, timeout=EXCHANGING_AFTER_S)
            if not done:
                on_phase("exchanging", deadline - time.monotonic())
            await attempt
            return
        except SteamerError as e:
            if e.code not in ("bad_state", "link", "timeout"):
                raise explain(e, name, "pairing") from None
            if e.code != "bad_state" and not st.connected:
                await st.reconnect()
        if time.monotonic() >= deadline:
            raise DeviceError(f"pairing with {name} timed out after {timeout_s:g} s: its "
                              "pairing window did not open (press and hold its button, keep "
                              f"holding it, and run `steamer pair {name}` again)")
        await asyncio.sleep(0.25)



# Why the steamer refused the podlet in it (podproto.names.PODLET_REASONS), for a person.
PODLET_REFUSALS = {
    "other": "for a reason this program does not know",
    "unreadable": "its ID chip cannot be read (take it out and put it in again)",
    "crc": "its ID chip's data is corrupt",
    "bad_signature": "it is not a genuine podlet (its signature does not verify)",
    "malformed": "its ID chip holds no valid podlet data",
    "not_provisioned": "the steamer has no manufacturer key yet",
    "clock_unset": "the steamer's clock is not set (a session start sets it)",
    "expired": "it is past its expiry date",
    "no_profile": "the steamer has no profile for its type (steamer profile push)",
    "used_up": "it is used up",
    "ledger_error": "the steamer's dose ledger cannot be read",
}


def podlet_of(status: dict) -> tuple[str, str | None]:
    """The inserted podlet's state (PODLET_STATES) and, refused, the reason's name."""
    s, r = status["podlet_state"], status["podlet_reason"]
    state = PODLET_STATES[s] if s < len(PODLET_STATES) else str(s)
    reason = PODLET_REASONS[r] if r < len(PODLET_REASONS) else "other"
    return state, reason if state == "refused" else None


def podlet_refused_text(reason: str | None) -> str:
    """"podlet refused: <why, in words>"."""
    return "podlet refused: " + PODLET_REFUSALS.get(reason or "other", reason or "")


# What each latched fault (podproto.names.FAULT_NAMES) means and what to do, for a
# person: (what happened, what to do). The firmware has stopped heating and dosing.
FAULT_ADVICE = {
    "overtemp_boiler": ("the boiler got too hot", "let it cool, then press the button"),
    "overtemp_outlet": ("the steam got too hot", "let it cool, then press the button"),
    "boiler_ntc_open": ("the boiler's temperature sensor is disconnected",
                        "unplug it and have it serviced"),
    "boiler_ntc_short": ("the boiler's temperature sensor is shorted",
                         "unplug it and have it serviced"),
    "boiler_ntc_range": ("the boiler's temperature sensor reads out of range",
                         "unplug it and have it serviced"),
    "boiler_ntc_frozen": ("the boiler's temperature sensor stopped changing",
                          "unplug it and have it serviced"),
    "outlet_ntc_open": ("the outlet's temperature sensor is disconnected",
                        "unplug it and have it serviced"),
    "outlet_ntc_short": ("the outlet's temperature sensor is shorted",
                         "unplug it and have it serviced"),
    "outlet_ntc_range": ("the outlet's temperature sensor reads out of range",
                         "unplug it and have it serviced"),
    "outlet_ntc_frozen": ("the outlet's temperature sensor stopped changing",
                          "unplug it and have it serviced"),
    "heater_stuck_on": ("the heater did not switch off",
                        "unplug it now and have it serviced"),
    "heater_not_heating": ("the heater does not heat", "unplug it and have it serviced"),
    "dry_boil": ("the boiler ran dry", "let it cool, fill the reservoir, press the button"),
    "water_empty": ("the water ran out", "fill the reservoir, then press the button"),
    "tip_over": ("the steamer tipped over",
                 "stand it upright, let it cool, press the button"),
    "pump_stall": ("the serum pump is stuck",
                   "take the podlet out and in again, then press the button"),
    "pump_overrun": ("the serum pump delivered more than it should",
                     "take the podlet out, press the button, and have it serviced if it "
                     "happens again"),
    "service_error": ("the steamer found an internal error", "have it serviced"),
}

# A state (podproto.names.STATE_NAMES) in the words a person reads.
STATE_WORDS = {"off": "off", "idle": "ready for a session", "preheat": "heating",
               "ready": "ready: steam is coming", "steaming": "steaming",
               "cooldown": "cooling down", "fault": "fault"}


def fault_name(code: int) -> str | None:
    return (FAULT_NAMES[code] if code < len(FAULT_NAMES) else str(code)) if code else None


def fault_amount_text(value: int, unit: int) -> str:
    """A fault record's value or limit in its unit (the fault list's `unit`), for people:
    "130 °C", "4095 ADC counts", "40 steps (4.0 s)", "600 nl"."""
    name = UNIT_NAMES[unit] if unit < len(UNIT_NAMES) else "none"
    if name == "mc":
        return f"{value / 1000:g} °C"
    if name == "counts":
        return f"{value} ADC counts"
    if name == "steps":
        return f"{value} steps ({value / 10:g} s)"
    if name == "nl":
        return f"{value} nl"
    return str(value)


@dataclass(frozen=True)
class SessionLimits:
    """Where the running session will end: whichever of its limits comes first."""
    limit_ul: int           # the dose it ends at
    left_ul: int            # of that, still to deliver
    left_s: float           # dosing time left
    exact: bool             # False before the dosing rate is known: limit_ul is an upper bound


def session_limits(status: dict, rate_ul_min: float | None = None) -> SessionLimits | None:
    """The running session's limits from the steamer's status (None outside a session).
    The status carries the dose limit (the profile's max_session_ul, or less when the
    podlet or the day has less left) and the dosing time (session_s); at the dosing rate
    (`rate_ul_min`, else the pump's while it doses) the time may end the session first."""
    if state_name(status) not in SESSION_STATES or status["limit_ul"] <= 0:
        return None
    rate = rate_ul_min or status["pump_ul_min"] or None
    limit_ul = status["limit_ul"]
    left_s = float(max(0, status["limit_s"] - status["session_s"]))
    if rate and status["limit_s"]:
        limit_ul = min(limit_ul, round(rate * status["limit_s"] / 60))
    left_ul = max(0, limit_ul - status["session_ul"])
    if rate:
        left_s = min(left_s, left_ul * 60 / rate)
    return SessionLimits(limit_ul, left_ul, left_s, exact=bool(rate))


def status_view(status: dict, extra: dict, rate_ul_min: float | None = None) -> dict:
    """A status as JSON-ready data for a person: units in the names. `rate_ul_min` is the
    session's dosing rate when the caller saw it earlier (see session_limits)."""
    state = state_name(status)
    out: dict[str, Any] = {
        "state": state, "fault": fault_name(status.get("fault", 0)),
        "boiler_c": status["boiler_mc"] / 1000, "outlet_c": status["outlet_mc"] / 1000,
        "heater_pct": status["heater_pct"], "pump_ul_min": status["pump_ul_min"],
        "podlet_type": status["podlet_type"] or None,
        "podlet_state": podlet_of(status)[0], "podlet_refused": podlet_of(status)[1],
        "session_ul": status["session_ul"] if state in SESSION_STATES else None,
        "dosing_s": status["session_s"] if state in SESSION_STATES else None,
        "clock_s": status["clock_s"] or None,
    }
    out.update(extra)
    lim = session_limits(status, rate_ul_min)
    out["limit_ul"] = lim.limit_ul if lim else None
    out["limit_exact"] = lim.exact if lim else None
    out["remaining_ul"] = lim.left_ul if lim else None
    out["dosing_left_s"] = round(lim.left_s) if lim else None
    return out


async def status_extra(st: Steamer, status: dict, paired: bool) -> dict:
    """What only a paired host may read, for status_view: the podlet's profile, the
    session's target, the latched fault's details."""
    if not paired:
        return {}
    out: dict[str, Any] = {}
    kind = status["podlet_type"]
    for p in await st.profiles():
        if kind and p["podlet_type"] == kind:
            out["profile"] = f"{p['name']} v{p['version']}"
    if state_name(status) in SESSION_STATES:
        rec = await last_record(st, "session_started")
        if rec is not None:
            out["target_c"] = rec["payload"].get("target_c")
    if status.get("fault"):
        faults = await st.faults()
        if faults:
            f = faults[-1]
            unit = f["unit"]
            out["fault_detail"] = {"code": fault_name(f["code"]), "value": f["value"],
                                   "limit": f["limit"], "unit": UNIT_NAMES[unit],
                                   "text": "%s against a limit of %s" % (
                                       fault_amount_text(f["value"], unit),
                                       fault_amount_text(f["limit"], unit)),
                                   "uptime_s": f["uptime_s"]}
    return out


def session_phases(samples: list) -> list[dict]:
    """Where a stored session's phases begin, from its samples (steamer.store.Sample):
    heating from the start, steam once the boiler is ready (READY_C), dosing once serum
    flows. [{"t_s", "phase"}], in order; a phase the session never reached is left out."""
    out = [{"t_s": 0.0, "phase": "heating"}] if samples else []
    ready = next((x for x in samples if (x.boiler_c or 0) >= READY_C), None)
    if ready is not None:
        out.append({"t_s": ready.t_ms / 1000, "phase": "steam"})
    dosing = next((x for x in samples if x.dose_ul > 0), None)
    if dosing is not None:
        out.append({"t_s": dosing.t_ms / 1000, "phase": "dosing"})
    return out


def mmss(s: float | None) -> str:
    if s is None:
        return "-"
    s = max(0, round(s))
    return f"{s // 60}:{s % 60:02d}"


class Progress:
    """The session's progress on `out`: a bar redrawn in place on a terminal (`tty`,
    default: whether `out` is one), a line at each tenth (and each change of phase)
    otherwise. Preheat toward the ready temperature, the steam toward its target, then
    the dose delivered against the limit the session will end at, and the time left."""

    def __init__(self, out: IO[str], target_c: float | None, tty: bool | None = None) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.target_c = target_c
        self.start_c: float | None = None
        self.rate_ul_min: float | None = None   # the dosing rate, once the pump showed it
        self.limit_ul: int | None = None        # where the dose ends, as last worked out
        self.last_key: tuple | None = None

    def update(self, status: dict) -> None:
        state = state_name(status)
        boiler = status["boiler_mc"] / 1000
        ul = status["session_ul"]
        if state in ("preheat", "ready") or (state == "steaming" and ul == 0):
            start_c = self.start_c = boiler if self.start_c is None else self.start_c
            frac = min(1.0, max(0.0, (boiler - start_c) / max(1.0, READY_C - start_c)))
            text = (f"preheat: boiler {boiler:.1f} °C of {READY_C:g} °C" if state != "steaming"
                    else f"steam: outlet {status['outlet_mc'] / 1000:.1f} °C"
                    + (f" toward {self.target_c:g} °C" if self.target_c else ""))
            phase = "preheat" if state != "steaming" else "steam"
        else:
            self.rate_ul_min = max(self.rate_ul_min or 0, status["pump_ul_min"]) or None
            lim = session_limits(status, self.rate_ul_min)
            self.limit_ul = lim.limit_ul if lim else self.limit_ul
            frac = min(1.0, ul / self.limit_ul) if self.limit_ul else 0.0
            text = f"dose: {ul} µl"
            if lim is not None:
                text += (f" of {lim.limit_ul} µl, {mmss(lim.left_s)} left" if lim.exact
                         else f" of up to {lim.limit_ul} µl")
            phase = "dose"
        self._draw(phase, frac, text)

    def finish(self, end_reason: str | None, dose_ul: float | None) -> None:
        """The session's end: a full bar when it ended at one of its limits."""
        if dose_ul is not None and (end_reason in FULL_ENDS or self.limit_ul):
            frac = 1.0 if end_reason in FULL_ENDS else min(1.0, dose_ul / (self.limit_ul or 1))
            self._draw("end", frac, f"dose: {dose_ul:g} µl delivered")
        self.close()

    def _draw(self, phase: str, frac: float, text: str) -> None:
        if self.tty:
            bar = "#" * round(frac * 24)
            self.out.write(f"\r[{bar:<24}] {text}\x1b[K")
            self.out.flush()
            return
        key = (phase, int(frac * 10))
        if key != self.last_key:
            self.last_key = key
            print(text, file=self.out, flush=True)

    def close(self) -> None:
        if self.tty and self.last_key != ("closed",):
            self.last_key = ("closed",)
            self.out.write("\n")
            self.out.flush()


async def record_since(st: Steamer, kind: str, first_seq: int,
                       wait_s: float = 0.0) -> dict | None:
    """The newest journal record of `kind` numbered first_seq or later, waiting up to
    wait_s for it to appear; None when there is none (an older one, say the previous
    session's, does not count)."""
    deadline = time.monotonic() + wait_s
    while True:
        rec = await last_record(st, kind, 40)
        if rec is not None and rec["seq"] >= first_seq:
            return rec
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.2)


async def read_status(st: Steamer) -> dict:
    """The status, over a link that is brought back when it drops."""
    while True:
        try:
            return await st.status()
        except (LinkLost, BleakError):
            await st.reconnect()


async def journal_next(st: Steamer) -> int:
    """The seq the steamer's next journal record will have, or a lower one (Info is
    written when the link comes up): what a command starts after has a seq below it."""
    return int((await read_info(st)).get("log_next", 0))


async def sync_device(st: Steamer, store: Store, device_id: str,
                      attempts: int = 4) -> tuple[DeviceSink, SyncResult]:
    """Pulls the steamer's new log records into `store`, each exactly once, resuming
    after a dropped link (up to `attempts` connections in all). The result names the
    records the steamer reports it lost before any host stored them."""
    sink = DeviceSink(store, device_id, st.info.get("log_first"))

    def relinked(info: dict) -> None:
        sink.log_first = info.get("log_first")
    return sink, await st.sync_logs(sink, reconnects=attempts - 1, on_reconnect=relinked)


def lost_line(label: str, res: SyncResult) -> str:
    """The warning `steamer sync` prints when the steamer lost records unsynced."""
    n = res.lost_records
    seqs = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in res.lost)
    return (f"steamer sync: warning: {label} lost {n} log record{'s' if n != 1 else ''} "
            f"(seq {seqs}) before any computer synced them: its log was full; "
            "sync more often to keep them all")


def journal_line(label: str, previous: str, journal: str) -> str:
    """The notice `steamer sync` prints when the steamer's journal is not the one synced
    at its address before (its flash reformatted, or another steamer there)."""
    return (f"steamer {label}: its journal is new (was {previous or 'not recorded'}, "
            f"now {journal}): syncing it from the start")
