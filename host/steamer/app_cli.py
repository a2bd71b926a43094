"""The consumer commands of `steamer`: scan, pair, status, session start/stop, sync and
profile push/list, a thin layer over steamer.ble.client, steamer.devices and
steamer.store. Each works against a real steamer (bleak's platform radio) or a
simulated one (`--sim`, or STEAMER_SIM=1; the air at $STEAMER_AIR, see `steamer sim
serve`).

Exit codes: 0 done, 1 the steamer or the link refused or failed (one line on stderr
says why), 2 a wrong input (usage, a file that is not a signed profile), 130 Ctrl-C.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sqlite3
import sys
import time
from datetime import datetime
from typing import IO, Any, Callable, Coroutine

from bleak.exc import BleakError

from steamer.ble.client import Found, LinkLost, Steamer, SteamerError
from podproto.names import FAULT_NAMES
from steamer.devices import (SCAN_S, SESSION_STATES, SIM_ENV, DeviceError, ProfileFileError,
                             connected, explain, label, last_record, load_keys,
                             read_profile_file, resolve, scan_all, sim_air, state_name)
from steamer.store import DB_ENV, DeviceSink, Store, StoreError

_FAILED = 1
_BAD_INPUT = 2
_INTERRUPTED = 130
READY_C = 97.0        # the firmware's preheat ends here (README: ready at 97 C)
_POLL_S = 0.5

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def _command(name: str) -> Callable[[Command], Callable[[argparse.Namespace], int]]:
    """Runs an async command; its expected failures become one line and an exit code."""
    def wrap(func: Command) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(func)
        def run(args: argparse.Namespace) -> int:
            try:
                return asyncio.run(func(args))
            except ProfileFileError as e:
                return _fail(name, str(e), _BAD_INPUT)
            except DeviceError as e:
                return _fail(name, str(e), _FAILED)
            except SteamerError as e:
                return _fail(name, str(explain(e, getattr(args, "label", "the steamer"),
                                               name)), _FAILED)
            except StoreError as e:
                return _fail(name, str(e), _FAILED)
            except sqlite3.Error as e:
                return _fail(name, f"database error: {e}", _FAILED)
            except (BleakError, asyncio.TimeoutError) as e:
                return _fail(name, f"Bluetooth: {e or type(e).__name__}", _FAILED)
            except OSError as e:
                where = f"{e.filename}: " if e.filename else ""
                return _fail(name, f"{where}{e.strerror or e}", _FAILED)
            except KeyboardInterrupt:
                note = getattr(args, "on_interrupt", None)
                if note:
                    print(f"\n{note}", file=sys.stderr)
                return _INTERRUPTED
        return run
    return wrap


def _fail(name: str, message: str, code: int) -> int:
    print(f"steamer {name}: {message}", file=sys.stderr)
    return code


def _json_out(data: object) -> None:
    print(json.dumps(data, indent=1, ensure_ascii=False))


async def _find(args: argparse.Namespace) -> tuple[Found, str | None]:
    air = sim_air(args.sim)
    found = await resolve(args.device, args.scan_timeout, air)
    args.label = label(found)
    return found, air


# ---- scan and pair ---------------------------------------------------------------------

@_command("scan")
async def _scan(args: argparse.Namespace) -> int:
    found = await scan_all(args.timeout, sim_air(args.sim))
    keys = load_keys(args.keys)
    rows = [{"name": f.name, "address": f.device.address, "state": f.state,
             "fault": FAULT_NAMES[f.fault] if 0 < f.fault < len(FAULT_NAMES) else None,
             "pairing_open": f.pairing_open, "paired": keys.get(f.device.address) is not None,
             "rssi": f.rssi} for f in found]
    if args.json:
        _json_out(rows)
        return 0
    if not rows:
        print(f"No steamer heard in {args.timeout:g} s (is it switched on and near?)",
              file=sys.stderr)
        return 0
    table = [("NAME", "ADDRESS", "STATE", "PAIRED", "RSSI")]
    table += [(r["name"] or "-", r["address"], (r["state"] or "?") + (
        f" ({r['fault']})" if r["fault"] else "") + (" pairing" if r["pairing_open"] else ""),
        "yes" if r["paired"] else "no", str(r["rssi"])) for r in rows]
    print_table(table)
    return 0


def print_table(rows: list[tuple[str, ...]], out: IO[str] = sys.stdout) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)


async def pair_until(st: Steamer, name: str, timeout_s: float) -> None:
    """Pairs once the steamer's pairing window opens, retrying until timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await st.pair()
            return
        except SteamerError as e:
            if e.code not in ("bad_state", "link", "timeout"):
                raise explain(e, name, "pairing") from None
            if e.code != "bad_state" and not st.connected:
                await st.reconnect()
        if time.monotonic() >= deadline:
            raise DeviceError(f"pairing with {name} timed out after {timeout_s:g} s: its "
                              "pairing window did not open (hold its button for 3 s, then "
                              f"run `steamer pair {name}` again)")
        await asyncio.sleep(0.25)


@_command("pair")
async def _pair(args: argparse.Namespace) -> int:
    keys = load_keys(args.keys)
    found, air = await _find(args)
    print(f"Hold {args.label}'s button for 3 seconds, until it shows it is ready to pair "
          f"(waiting up to {args.timeout:g} s)...", file=sys.stderr)
    async with connected(found, keys, air, auth=False) as st:
        await pair_until(st, args.label, args.timeout)
    if args.json:
        _json_out({"device": args.label, "address": found.device.address, "paired": True,
                   "keys": str(keys.path)})
    else:
        print(f"paired with {args.label} ({found.device.address}); key kept in {keys.path}")
    return 0


# ---- status ------------------------------------------------------------------------------

def _fault_name(code: int) -> str | None:
    return (FAULT_NAMES[code] if code < len(FAULT_NAMES) else str(code)) if code else None


def status_view(status: dict, extra: dict) -> dict:
    """A status as JSON-ready data for a person: units in the names."""
    state = state_name(status)
    out: dict[str, Any] = {
        "state": state, "fault": _fault_name(status.get("fault", 0)),
        "boiler_c": status["boiler_mc"] / 1000, "outlet_c": status["outlet_mc"] / 1000,
        "heater_pct": status["heater_pct"], "pump_ul_min": status["pump_ul_min"],
        "podlet_type": status["podlet_type"] or None,
        "session_ul": status["session_ul"] if state in SESSION_STATES else None,
        "dosing_s": status["session_s"] if state in SESSION_STATES else None,
        "clock_s": status["clock_s"] or None,
    }
    out.update(extra)
    insession = state in SESSION_STATES and status["limit_ul"] > 0
    out["limit_ul"] = status["limit_ul"] if insession else None
    out["remaining_ul"] = max(0, status["limit_ul"] - status["session_ul"]) if insession else None
    out["dosing_left_s"] = (max(0, status["limit_s"] - status["session_s"])
                            if insession else None)
    return out


async def _extra(st: Steamer, status: dict, paired: bool) -> dict:
    """What only a paired host may read: the podlet's profile, the session's target, the
    latched fault's details."""
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
            out["fault_detail"] = {"code": _fault_name(f["code"]), "value_c": f["value_mc"] / 1000,
                                   "limit_c": f["limit_mc"] / 1000, "uptime_s": f["uptime_s"]}
    return out


def _status_lines(name: str, address: str, v: dict) -> list[str]:
    lines = [f"{name} ({address}): {v['state']}"]
    lines.append(f"  boiler   {v['boiler_c']:.1f} °C")
    lines.append(f"  outlet   {v['outlet_c']:.1f} °C"
                 + (f" (target {v['target_c']:g} °C)" if v.get("target_c") else ""))
    lines.append(f"  heater   {v['heater_pct']} %, pump {v['pump_ul_min']} µl/min")
    podlet = f"type {v['podlet_type']}" if v["podlet_type"] else "none"
    if v.get("profile"):
        podlet += f" ({v['profile']})"
    lines.append(f"  podlet   {podlet}")
    if v["session_ul"] is not None:
        dose = f"{v['session_ul']} µl delivered"
        if v["remaining_ul"] is not None:
            dose += f", {v['remaining_ul']} µl to go"
        lines.append(f"  dose     {dose} ({_mmss(v['dosing_s'])} of dosing)")
    fault = v["fault"] or "none"
    d = v.get("fault_detail")
    if d:
        fault += f" ({d['value_c']:g} °C against a limit of {d['limit_c']:g} °C)"
    lines.append(f"  fault    {fault}")
    if v["clock_s"]:
        lines.append(f"  clock    {datetime.fromtimestamp(v['clock_s']).astimezone():%Y-%m-%d %H:%M:%S}")
    return lines


def _status_line(v: dict) -> str:
    text = (f"{datetime.now():%H:%M:%S} {v['state']:<9} boiler {v['boiler_c']:5.1f} °C  "
            f"outlet {v['outlet_c']:5.1f} °C  heater {v['heater_pct']:3d} %")
    if v["session_ul"] is not None:
        text += f"  dose {v['session_ul']} µl"
        if v["remaining_ul"] is not None:
            text += f" ({v['remaining_ul']} to go)"
    if v["fault"]:
        text += f"  FAULT {v['fault']}"
    return text


def _mmss(s: float | None) -> str:
    if s is None:
        return "-"
    s = max(0, round(s))
    return f"{s // 60}:{s % 60:02d}"


@_command("status")
async def _status(args: argparse.Namespace) -> int:
    keys = load_keys(args.keys)
    found, air = await _find(args)
    paired = keys.get(found.device.address) is not None
    async with connected(found, keys, air, auth=paired) as st:
        status = await st.status()
        extra = await _extra(st, status, paired)
        view = status_view(status, extra)
        if not args.follow:
            if args.json:
                _json_out(dict(view, device=args.label, address=found.device.address))
            else:
                print("\n".join(_status_lines(args.label, found.device.address, view)))
            return 0
        args.on_interrupt = f"stopped following {args.label}"
        last_state = None
        while True:
            if args.json:
                print(json.dumps(view), flush=True)
            else:
                print(_status_line(view), flush=True)
            await asyncio.sleep(args.interval)
            status = await st.status()
            if state_name(status) != last_state:
                extra = await _extra(st, status, paired)
                last_state = state_name(status)
            view = status_view(status, extra)


# ---- sessions ------------------------------------------------------------------------------

class Progress:
    """The session's progress on stderr: a bar redrawn in place on a terminal, a line
    at each tenth (and each change of phase) otherwise."""

    def __init__(self, out: IO[str], limit_ul: int | None, target_c: float | None) -> None:
        self.out = out
        self.tty = out.isatty()
        self.limit_ul = limit_ul
        self.target_c = target_c
        self.start_c: float | None = None
        self.dose_t0: tuple[float, int] | None = None    # (monotonic s, µl) at first dose
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
            now = time.monotonic()
            if self.dose_t0 is None:
                self.dose_t0 = (now, ul)
            limit_ul = status["limit_ul"] or self.limit_ul
            frac = min(1.0, ul / limit_ul) if limit_ul else 0.0
            text = f"dose: {ul} µl" + (f" of up to {limit_ul} µl" if limit_ul else "")
            t0, ul0 = self.dose_t0
            left_s = status["limit_s"] - status["session_s"] if status["limit_s"] else None
            if limit_ul and ul > ul0 and now > t0:
                # Whichever ends the session first: the dose at this rate, or its time.
                by_dose_s = (limit_ul - ul) / ((ul - ul0) / (now - t0))
                left_s = by_dose_s if left_s is None else min(left_s, by_dose_s)
            if left_s is not None:
                text += f", {_mmss(max(0, left_s))} left"
            phase = "dose"
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
        if self.tty:
            self.out.write("\n")
            self.out.flush()


@_command("session start")
async def _session_start(args: argparse.Namespace) -> int:
    keys = load_keys(args.keys)
    found, air = await _find(args)
    name = args.label
    async with connected(found, keys, air, auth=True) as st:
        await st.set_clock()     # so the session's records carry the time
        status = await st.status()
        if state_name(status) in SESSION_STATES:
            raise DeviceError(f"{name} is busy: a session is already running "
                              f"(`steamer session stop {name}` ends it)")
        if state_name(status) == "cooldown":
            raise DeviceError(f"{name} is busy: it is cooling down after a session (try "
                              f"again once `steamer status {name}` says idle)")
        try:
            await st.start_session(status["podlet_type"])
        except SteamerError as e:
            raise explain(e, name, "to start a session") from None
        started = await last_record(st, "session_started", 40)
        p = started["payload"] if started else {}
        result: dict[str, Any] = {"device": name, "address": found.device.address,
                                  "profile": p.get("profile"), "version": p.get("version"),
                                  "podlet": p.get("podlet"), "target_c": p.get("target_c"),
                                  "limit_ul": p.get("limit_ul")}
        if args.detach:
            result["state"] = "started"
            _session_out(args, result)
            return 0
        args.on_interrupt = (f"stopped watching; the session goes on on {name} "
                             f"(`steamer session stop {name}` ends it)")
        bar = Progress(sys.stderr, p.get("limit_ul"), p.get("target_c"))
        last = status
        try:
            while True:
                try:
                    status = await st.status()
                except (LinkLost, BleakError):
                    await st.reconnect()
                    continue
                if state_name(status) not in SESSION_STATES:
                    break
                last = status
                bar.update(status)
                await asyncio.sleep(_POLL_S)
        finally:
            bar.close()
        ended = await last_record(st, "session_ended", 40)
    e = ended["payload"] if ended else {}
    fault = _fault_name(status.get("fault", 0))
    result.update(state=state_name(status), end_reason=e.get("reason") or
                  ("fault" if fault else None),
                  dose_ul=e.get("session_ul", last["session_ul"]),
                  dosing_s=e.get("dose_s", last["session_s"]), fault=fault)
    _session_out(args, result)
    return _FAILED if result["end_reason"] == "fault" or fault else 0


def _session_out(args: argparse.Namespace, r: dict) -> None:
    if args.json:
        _json_out(r)
        return
    what = f"{r['profile']} v{r['version']}" if r.get("profile") else "session"
    if r["state"] == "started":
        limit = f", up to {r['limit_ul']} µl" if r.get("limit_ul") else ""
        print(f"started {what} on {r['device']}{limit} (`steamer status {r['device']} "
              "--follow` to watch it)")
        return
    from steamer.store import END_REASONS
    reason = r.get("end_reason")
    why = f": {END_REASONS.get(reason, reason)}" if reason else ""
    fault = f" ({r['fault']})" if r.get("fault") else ""
    print(f"{what} on {r['device']} ended{why}{fault}; {r['dose_ul']:g} µl delivered in "
          f"{_mmss(r['dosing_s'])} of dosing")


@_command("session stop")
async def _session_stop(args: argparse.Namespace) -> int:
    keys = load_keys(args.keys)
    found, air = await _find(args)
    async with connected(found, keys, air, auth=True) as st:
        try:
            await st.stop_session()
        except SteamerError as e:
            raise explain(e, args.label, "to stop") from None
        status = await st.status()
    if args.json:
        _json_out({"device": args.label, "address": found.device.address, "stopped": True,
                   "state": state_name(status), "dose_ul": status["session_ul"]})
    else:
        print(f"stopped the session on {args.label} ({state_name(status)} now)")
    return 0


# ---- sync ----------------------------------------------------------------------------------

async def sync_device(st: Steamer, store: Store, device_id: str, attempts: int = 4) -> DeviceSink:
    """Pulls the steamer's new log records into `store`, each exactly once, resuming
    after a dropped link (up to `attempts` connections in all)."""
    sink = DeviceSink(store, device_id, st.info.get("log_first"))
    for attempt in range(attempts):
        try:
            await st.sync_logs(sink)
            return sink
        except SteamerError as e:
            if e.code not in ("link", "timeout") or attempt == attempts - 1:
                raise
        await st.reconnect()
        await st.authenticate()
        sink.log_first = st.info.get("log_first")
    return sink


@_command("sync")
async def _sync(args: argparse.Namespace) -> int:
    keys = load_keys(args.keys)
    with Store.open(args.db) as store:
        found, air = await _find(args)
        address = found.device.address
        store.add_device(address, name=found.name, address=address)
        t0 = time.monotonic()
        async with connected(found, keys, air, auth=True) as st:
            sink = await sync_device(st, store, address)
        sessions = store.sessions(address)
        out = {"device": args.label, "address": address, "new_records": sink.new,
               "duplicates": sink.duplicate, "last_seq": store.last_seq(address),
               "sessions": len(sessions), "db": str(store.path),
               "seconds": round(time.monotonic() - t0, 3)}
    if args.json:
        _json_out(out)
    else:
        print(f"synced {out['new_records']} new records from {args.label}: "
              f"{out['sessions']} sessions of it in {out['db']} (`steamer sessions` lists them)")
    return 0


# ---- profiles ------------------------------------------------------------------------------

@_command("profile push")
async def _profile_push(args: argparse.Namespace) -> int:
    prof = read_profile_file(args.file)        # a wrong file fails before any scan
    keys = load_keys(args.keys)
    found, air = await _find(args)
    async with connected(found, keys, air, auth=True) as st:
        try:
            await st.push_profile(prof.data)
        except SteamerError as e:
            raise explain(e, args.label, f"profile {prof.title}") from None
        installed = await st.profiles()
    f = prof.fields
    ok = any(p["podlet_type"] == f["podlet_type"] and p["version"] == f["version"]
             for p in installed)
    if not ok:
        raise DeviceError(f"{args.label} acknowledged {prof.title} but does not list it")
    if args.json:
        _json_out({"device": args.label, "address": found.device.address, "installed": True,
                   "file": str(prof.path), "podlet_type": f["podlet_type"],
                   "version": f["version"], "name": f["name"]})
    else:
        print(f"installed {prof.title} on {args.label}")
    return 0


@_command("profile list")
async def _profile_list(args: argparse.Namespace) -> int:
    keys = load_keys(args.keys)
    found, air = await _find(args)
    async with connected(found, keys, air, auth=True) as st:
        profiles = sorted(await st.profiles(), key=lambda p: p["podlet_type"])
    if args.json:
        _json_out(profiles)
    elif not profiles:
        print(f"{args.label} has no profiles (`steamer profile push` installs one)")
    else:
        print_table([("TYPE", "VERSION", "NAME")] + [
            (str(p["podlet_type"]), str(p["version"]), p["name"]) for p in profiles])
    return 0


# ---- parsers -------------------------------------------------------------------------------

RADIO_HELP = (f"Add --sim (or set {SIM_ENV}=1) to reach simulated steamers (`steamer sim "
              "serve`) on the simulated air at $STEAMER_AIR (default 127.0.0.1:47474) "
              "instead of the Bluetooth adapter.")


def radio_options(p: argparse.ArgumentParser, *, device: bool = True) -> None:
    """--sim, --keys and (for commands naming a DEVICE) --scan-timeout."""
    p.add_argument("--sim", action="store_true",
                   help=f"use the simulated air, not Bluetooth (also: {SIM_ENV}=1)")
    p.add_argument("--keys", metavar="FILE",
                   help="this computer's pairing keys (default: $STEAMER_KEYS, else "
                        "keys.json in the user config folder, e.g. ~/.config/steamer)")
    if device:
        p.add_argument("--scan-timeout", type=float, default=SCAN_S, metavar="S",
                       help="how long to look for DEVICE (default: %(default)g s)")


def _parser(sub: argparse._SubParsersAction, name: str, help_text: str, description: str,
            examples: str, func: Callable[[argparse.Namespace], int], *,
            device: bool = True, json_help: str | None = None) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=f"{description} {RADIO_HELP}",
                       epilog="Example:\n" + examples,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    if device:
        p.add_argument("device", metavar="DEVICE",
                       help="the steamer's name or address, as `steamer scan` shows it")
    radio_options(p, device=device)
    if json_help:
        p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=func)
    return p


def register(groups: argparse._SubParsersAction) -> None:
    """Adds scan, pair, status, session, sync and profile to the top-level subparsers."""
    p = _parser(groups, "scan", "list the steamers in range",
                "List the steamers advertising nearby: name, address, state, whether this "
                "computer is paired with each.",
                "  steamer scan\n  steamer scan --sim --json", _scan, device=False,
                json_help="print the list as JSON")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S",
                   help="how long to listen (default: %(default)g s)")

    p = _parser(groups, "pair", "pair this computer with a steamer (hold its button)",
                "Pair with DEVICE: hold the steamer's button for 3 seconds to open its "
                "pairing window; this waits for it (--timeout) and keeps the key. Commands "
                "that change something on the steamer need it.",
                "  steamer pair bathroom-steamer", _pair,
                json_help="print the result as JSON")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="how long to wait for the pairing window (default: %(default)g s)")

    p = _parser(groups, "status", "a steamer's temperatures, state, podlet, dose, faults",
                "Show DEVICE's state, boiler and outlet temperatures, heater and pump, the "
                "podlet, the dose delivered (and, once paired, still to go), and faults. "
                "--follow prints a line every --interval seconds until Ctrl-C.",
                "  steamer status bathroom-steamer --follow", _status,
                json_help="print JSON (one object a line with --follow)")
    p.add_argument("--follow", action="store_true", help="keep printing until Ctrl-C")
    p.add_argument("--interval", type=float, default=1.0, metavar="S",
                   help="seconds between lines with --follow (default: %(default)g)")

    session = groups.add_parser(
        "session", help="start or stop a steaming session",
        description="Start or stop a steaming session on a steamer.",
        epilog="Example:\n  steamer session start bathroom-steamer\n"
               "  steamer session stop bathroom-steamer",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = session.add_subparsers(dest="session_command", metavar="SUBCOMMAND")
    sub.required = True
    p = _parser(sub, "start", "start a session and show its progress",
                "Start a session on DEVICE with the podlet inserted, then show its progress "
                "on stderr (preheat, then the dose delivered and the time left) and a "
                "summary on stdout when it ends. Ctrl-C stops the display, not the "
                "session (exit 130). Exit 1 when the steamer refuses (no podlet, water low, "
                "busy, ...) or the session ends in a fault.",
                "  steamer session start bathroom-steamer\n"
                "  steamer session start bathroom-steamer --detach --json", _session_start,
                json_help="print the summary as JSON")
    p.add_argument("--detach", action="store_true",
                   help="start it and return at once, without following it")
    _parser(sub, "stop", "stop the running session",
            "Stop the session running on DEVICE (the steamer then cools down). Exit 1 when "
            "no session is running.",
            "  steamer session stop bathroom-steamer", _session_stop,
            json_help="print the result as JSON")

    p = _parser(groups, "sync", "copy a steamer's session logs to this computer",
                "Pull DEVICE's new log records into the session database, each exactly once "
                "(a sync cut short resumes where it stopped), then let the steamer drop "
                "them. `steamer sessions` and `steamer plot` show what it brought in.",
                "  steamer sync bathroom-steamer && steamer sessions", _sync,
                json_help="print the result as JSON")
    p.add_argument("--db", metavar="PATH",
                   help=f"the session database (default: ${DB_ENV}, else sessions.sqlite3 "
                        "in the user data folder, e.g. ~/.local/share/steamer)")

    profile = groups.add_parser(
        "profile", help="install or list a steamer's treatment profiles",
        description="Install signed treatment profiles on a steamer, or list them.",
        epilog="Example:\n  steamer profile push bathroom-steamer vitamin-c.bin\n"
               "  steamer profile list bathroom-steamer",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = profile.add_subparsers(dest="profile_command", metavar="SUBCOMMAND")
    sub.required = True
    p = _parser(sub, "push", "install a signed profile",
                "Send FILE, a profile signed by the manufacturer (`steamer mfg sign-profile` "
                "writes one), to DEVICE, which checks its signature and version and installs "
                "it. An upload cut short resumes. Exit 2 when FILE is not a signed profile.",
                "  steamer profile push bathroom-steamer vitamin-c.bin", _profile_push,
                json_help="print the result as JSON")
    p.add_argument("file", metavar="FILE", help="the signed profile (.bin)")
    _parser(sub, "list", "list the installed profiles",
            "List the treatment profiles installed on DEVICE: podlet type, version, name.",
            "  steamer profile list bathroom-steamer --json", _profile_list,
            json_help="print the list as JSON")
