"""The consumer commands of `steamer`: scan, pair, status, session start/stop, sync,
profile push/list and app (the web app, steamer.app), a thin layer over
steamer.client, steamer.devices, steamer.live and steamer.store. Each works against a real steamer (bleak's platform radio) or a
simulated one (`--sim`, or STEAMER_SIM=1; the air at $STEAMER_AIR, see `steamer sim
serve`).

Exit codes: 0 done, 1 the steamer or the link refused or failed (one line on stderr
says why), 2 a wrong input (usage, a file that is not a signed profile), 130 Ctrl-C.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import webbrowser
from datetime import datetime
from typing import Any, Awaitable, Callable

from bleak.exc import BleakError

from podproto.names import FAULT_NAMES, SESSION_STATES
from steamer import course
from steamer.applink import AppLink, remove_app_file, running_app, write_app_file
from steamer.client import Found, Steamer, SteamerError
from steamer.devices import (SCAN_S, SIM_ENV, DeviceError, InputFileError, connected,
                             detail_of, explain, label, last_record, load_keys, read_info,
                             read_profile_file, resolve, scan_all, scan_row, sim_air,
                             state_name)
from steamer.session import (PODLET_REFUSALS, Progress, fault_name, journal_line,
                             journal_next, lost_line, mmss, pair_until, podlet_of,
                             podlet_refused_text, read_status, record_since, say_if_created,
                             status_extra, status_view, sync_device)
from steamer.store import DB_ENV, END_REASONS, Store, StoreError
from steamer.terminal import (BAD_INPUT, FAILED, ErrorRow, command, json_out, positive_s,
                              print_table)

_POLL_S = 0.5
PUSH_RECONNECTS = 3     # `profile push`: new connections after a lost link
# How long a steamer may take to show a command's effect in its status, which it writes
# once a second of its own time (a simulated one may run slower than real time).
_SETTLE_S = 30.0

def _refusal(e: BaseException, name: str, args: argparse.Namespace) -> str:
    assert isinstance(e, SteamerError)
    return str(explain(e, getattr(args, "label", "the steamer"), name))


# The consumer commands' expected failures, after which the command ends with one line.
ERRORS: tuple[ErrorRow, ...] = (
    (InputFileError, BAD_INPUT, None),
    (DeviceError, FAILED, None),
    (SteamerError, FAILED, _refusal),
    (StoreError, FAILED, None),
    ((BleakError, asyncio.TimeoutError), FAILED,
     lambda e, _n, _a: f"Bluetooth: {e or type(e).__name__}"),
)


def _command(name: str) -> Callable[[Callable[[argparse.Namespace], Any]],
                                    Callable[[argparse.Namespace], int]]:
    return command(name, ERRORS)


def _via_app(args: argparse.Namespace) -> tuple[AppLink, dict] | None:
    """The running `steamer app` and the steamer it holds, when that is DEVICE: a
    connected steamer does not advertise, so the command goes through the app."""
    app = running_app()
    try:
        held = app.holds(args.device) if app is not None else None
    except DeviceError:     # a stale address file: no app there any more
        held = None
    if app is None or held is None:
        return None
    args.label = held["device"]
    print(f"{held['device']} is connected to the running steamer app: going through it",
          file=sys.stderr)
    return app, held


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
    rows = [scan_row(f, keys) for f in found]
    if args.json:
        json_out(rows)
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



@_command("pair")
async def _pair(args: argparse.Namespace) -> int:
    via = _via_app(args)
    if via is not None:
        return await _pair_via_app(args, *via)
    keys = load_keys(args.keys)
    found, air = await _find(args)
    print(f"Press and hold {args.label}'s button, and keep holding it until this says it "
          f"is paired (the window opens after 3 s; waiting up to {args.timeout:g} s)...",
          file=sys.stderr)
    async with connected(found, keys, air, auth=False) as st:
        await pair_until(st, args.label, args.timeout)
    if args.json:
        json_out({"device": args.label, "address": found.device.address, "paired": True,
                   "keys": str(keys.path)})
    else:
        print(f"paired with {args.label} ({found.device.address}); key kept in {keys.path}")
    return 0


async def _pair_via_app(args: argparse.Namespace, app: AppLink, held: dict) -> int:
    """pair through the running app: it lets go of the steamer, pairs (keeping the key
    in its own key file) and holds it again; this follows the app's pairing events."""
    print(f"Press and hold {args.label}'s button, and keep holding it until this says it "
          f"is paired (the window opens after 3 s; waiting up to {args.timeout:g} s)...",
          file=sys.stderr)
    app.post("/api/pair", {"address": held["address"], "timeout_s": args.timeout,
                           "reconnect": True})
    said = None
    deadline = time.monotonic() + args.timeout + _SETTLE_S
    while True:
        ev = app.get("/api/pair")
        if ev is not None and ev["phase"] in ("paired", "failed"):
            break
        if ev is not None and ev["phase"] != said:
            said = ev["phase"]
            print(ev["text"], file=sys.stderr, flush=True)
        if time.monotonic() > deadline:
            raise DeviceError(f"the steamer app has not finished pairing with {args.label} "
                              f"in {args.timeout + _SETTLE_S:g} s")
        await asyncio.sleep(0.25)
    if ev["phase"] == "failed":
        raise DeviceError(f"{args.label} (through the steamer app): {ev['text']}")
    if args.json:
        json_out({"device": args.label, "address": held["address"], "paired": True,
                  "via": "app"})
    else:
        print(f"{ev['text'].split(':', 1)[0]} ({held['address']}) through the steamer app; "
              "the key is in the app's key file")
    return 0


# ---- status ------------------------------------------------------------------------------
def _status_lines(name: str, address: str, v: dict) -> list[str]:
    lines = [f"{name} ({address}): {v['state']}"]
    lines.append(f"  boiler   {v['boiler_c']:.1f} °C")
    lines.append(f"  outlet   {v['outlet_c']:.1f} °C"
                 + (f" (target {v['target_c']:g} °C)" if v.get("target_c") else ""))
    lines.append(f"  heater   {v['heater_pct']} %, pump {v['pump_ul_min']} µl/min")
    podlet = f"type {v['podlet_type']}" if v["podlet_type"] else "none"
    if v.get("profile"):
        podlet += f" ({v['profile']})"
    if v["podlet_state"] == "refused":
        podlet = podlet_refused_text(v["podlet_refused"]).removeprefix("podlet ")
    elif v["podlet_state"] == "checking":
        podlet = "being checked"
    lines.append(f"  podlet   {podlet}")
    if v["session_ul"] is not None:
        dose = f"{v['session_ul']} µl delivered"
        if v["remaining_ul"] is not None and v["limit_exact"]:
            dose += f", {v['remaining_ul']} µl to go, {mmss(v['dosing_left_s'])} left"
        elif v["remaining_ul"] is not None:
            dose += (f" of up to {v['limit_ul']} µl, then up to "
                     f"{mmss(v['dosing_left_s'])} of dosing")
        lines.append(f"  dose     {dose}")
    fault = v["fault"] or "none"
    d = v.get("fault_detail")
    if d:
        fault += f" ({d['text']})"
    lines.append(f"  fault    {fault}")
    if v["clock_s"]:
        lines.append(f"  clock    {datetime.fromtimestamp(v['clock_s']).astimezone():%Y-%m-%d %H:%M:%S}")
    return lines


def _status_line(v: dict) -> str:
    text = (f"{datetime.now():%H:%M:%S} {v['state']:<9} boiler {v['boiler_c']:5.1f} °C  "
            f"outlet {v['outlet_c']:5.1f} °C  heater {v['heater_pct']:3d} %")
    if v["session_ul"] is not None:
        text += f"  dose {v['session_ul']} µl"
        if v["remaining_ul"] is not None and v["limit_exact"]:
            text += f" ({v['remaining_ul']} to go, {mmss(v['dosing_left_s'])} left)"
        elif v["remaining_ul"] is not None:
            text += f" (of up to {v['limit_ul']})"
    if v["fault"]:
        text += f"  FAULT {v['fault']}"
    return text


@_command("status")
async def _status(args: argparse.Namespace) -> int:
    via = _via_app(args)
    if via is not None:
        return await _status_via_app(args, *via)
    keys = load_keys(args.keys)
    found, air = await _find(args)
    paired = keys.get(found.device.address) is not None
    async with connected(found, keys, air, auth=paired) as st:
        status = await st.status()
        extra = await status_extra(st, status, paired)
        view = status_view(status, extra)
        who = {"device": args.label, "address": found.device.address}
        if not args.follow:
            if args.json:
                json_out(dict(view, **who))
            else:
                print("\n".join(_status_lines(args.label, found.device.address, view)))
            return 0
        args.on_interrupt = f"stopped following {args.label}"
        last_state = state_name(status)
        rate = status["pump_ul_min"] or None      # the dosing rate, once seen
        while True:
            if args.json:
                print(json.dumps(dict(view, **who), ensure_ascii=False), flush=True)
            else:
                print(_status_line(view), flush=True)
            await asyncio.sleep(args.interval)
            status = await read_status(st)
            if state_name(status) != last_state:
                extra = await status_extra(st, status, paired)
                last_state = state_name(status)
                rate = None
            rate = max(rate or 0, status["pump_ul_min"]) or None
            view = status_view(status, extra, rate)


async def _status_via_app(args: argparse.Namespace, app: AppLink, held: dict) -> int:
    args.on_interrupt = f"stopped following {args.label}"
    while True:
        view = {k: v for k, v in app.get("/api/status").items()
                if k not in ("type", "device", "sent_ms") and not k.endswith("_text")
                and k != "fault_todo"}
        if args.json:
            print(json.dumps(dict(view, **held), ensure_ascii=False), flush=True)
        elif args.follow:
            print(_status_line(view), flush=True)
        else:
            print("\n".join(_status_lines(held["device"], held["address"], view)))
        if not args.follow:
            return 0
        await asyncio.sleep(args.interval)


# ---- sessions ------------------------------------------------------------------------------

@_command("session start")
async def _session_start(args: argparse.Namespace) -> int:
    via = _via_app(args)
    if via is not None:
        return await _session_start_via_app(args, *via)
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
        before = await journal_next(st)
        try:
            await st.start_session(status["podlet_type"])
        except SteamerError as e:
            raise await _start_refused(st, e, name) from None
        started = await record_since(st, "session_started", before, 3.0)
        p = started["payload"] if started else {}
        # This session's end is journaled after its start: an older end is the last one's.
        end_from = started["seq"] + 1 if started else before
        result = _started(args, {"device": name, "address": found.device.address}, p)
        if result is None:
            return 0

        async def ended(wait_s: float) -> dict | None:
            rec = await record_since(st, "session_ended", end_from, wait_s)
            return rec["payload"] if rec else None
        await _watch_session(name, status, p, result, lambda: read_status(st), ended)
    _session_out(args, result)
    return FAILED if result["end_reason"] == "fault" or result["fault"] else 0


async def _session_start_via_app(args: argparse.Namespace, app: AppLink, held: dict) -> int:
    """session start through the running app: the same progress and summary."""
    name = args.label
    got = app.post("/api/session/start")
    p, end_from = got["started"], got["end_from"]
    result = _started(args, {"device": name, "address": held["address"], "via": "app"}, p)
    if result is None:
        return 0

    async def status() -> dict:
        return app.get("/api/status/raw")

    async def ended(wait_s: float) -> dict | None:
        return app.get(f"/api/session/end?from={end_from}&wait_s={wait_s:g}")
    await _watch_session(name, await status(), p, result, status, ended)
    _session_out(args, result)
    return FAILED if result["end_reason"] == "fault" or result["fault"] else 0


def _started(args: argparse.Namespace, who: dict, p: dict) -> dict | None:
    """The summary so far of a session just started (`p`: its session_started record's
    payload); None once printed, with --detach."""
    result: dict[str, Any] = dict(who, profile=p.get("profile"), version=p.get("version"),
                                  podlet=p.get("podlet"), target_c=p.get("target_c"),
                                  limit_ul=p.get("limit_ul"))
    if args.detach:
        result["state"] = "started"
        _session_out(args, result)
        return None
    name = who["device"]
    args.on_interrupt = (f"stopped watching; the session goes on on {name} "
                         f"(`steamer session stop {name}` ends it)")
    return result


async def _watch_session(name: str, status: dict, started: dict, result: dict,
                         read: Callable[[], Awaitable[dict]],
                         ended_since: Callable[[float], Awaitable[dict | None]]) -> None:
    """Shows the session's progress on stderr until it ends; adds its end to `result`
    (state, end_reason, dose_ul, dosing_s, fault). `read` gives the steamer's status,
    `ended_since(wait_s)` this session's session_ended payload (None: none yet)."""
    bar = Progress(sys.stderr, started.get("target_c"))
    last = status
    ended = None
    # The status is written once a second of the steamer's time: right after the
    # start it may still say idle. The session is over once the status has shown it
    # and then left it, or once its end is journaled (it may end before it shows).
    shown = False
    deadline = time.monotonic() + _SETTLE_S
    try:
        while True:
            status = await read()
            if state_name(status) in SESSION_STATES:
                shown = True
                last = status
                bar.update(status)
            elif shown:
                break
            else:
                ended = await ended_since(0.0)
                if ended is not None:
                    break
                if time.monotonic() > deadline:
                    raise DeviceError(f"{name} acknowledged the start, but its status "
                                      f"has not shown the session in {_SETTLE_S:g} s")
            await asyncio.sleep(_POLL_S)
        e = ended or await ended_since(5.0) or {}
        fault = fault_name(status.get("fault", 0))
        result.update(state=state_name(status), end_reason=e.get("reason") or
                      ("fault" if fault else None),
                      dose_ul=e.get("session_ul", last["session_ul"]),
                      dosing_s=e.get("dose_s", last["session_s"]), fault=fault)
        bar.finish(result["end_reason"], result["dose_ul"])
    finally:
        bar.close()


async def _start_refused(st: Steamer, e: SteamerError, name: str) -> DeviceError:
    """The refused start in words; a refused podlet names its refusal (the steamer
    answers no_podlet, or the podlet's own reason, for it)."""
    reason = detail_of(e) or e.code
    if e.code == "bad_state" and (reason == "no_podlet" or reason in PODLET_REFUSALS):
        try:
            state, why = podlet_of(await st.status())
        except (SteamerError, BleakError):
            state, why = "", None
        if state == "refused":
            return DeviceError(f"{name} refused to start a session: "
                               f"{podlet_refused_text(why)} ({why})")
    return explain(e, name, "to start a session")


def _session_out(args: argparse.Namespace, r: dict) -> None:
    if args.json:
        json_out(r)
        return
    what = f"{r['profile']} v{r['version']}" if r.get("profile") else "session"
    if r["state"] == "started":
        limit = f", up to {r['limit_ul']} µl" if r.get("limit_ul") else ""
        print(f"started {what} on {r['device']}{limit} (`steamer status {r['device']} "
              "--follow` to watch it)")
        return
    reason = r.get("end_reason")
    why = f": {END_REASONS.get(reason, reason)}" if reason else ""
    fault = f" ({r['fault']})" if r.get("fault") else ""
    print(f"{what} on {r['device']} ended{why}{fault}; {r['dose_ul']:g} µl delivered in "
          f"{mmss(r['dosing_s'])} of dosing")


@_command("session stop")
async def _session_stop(args: argparse.Namespace) -> int:
    via = _via_app(args)
    if via is not None:
        via[0].post("/api/session/stop")
        if args.json:
            json_out({"device": args.label, "address": via[1]["address"], "stopped": True,
                      "via": "app"})
        else:
            print(f"stopped the session on {args.label} (through the steamer app)")
        return 0
    keys = load_keys(args.keys)
    found, air = await _find(args)
    async with connected(found, keys, air, auth=True) as st:
        before = await journal_next(st)
        try:
            await st.stop_session()
        except SteamerError as e:
            raise explain(e, args.label, "to stop") from None
        # The status may say the session's state for up to a second after the ack.
        deadline = time.monotonic() + _SETTLE_S
        while True:
            status = await read_status(st)
            if state_name(status) not in SESSION_STATES or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        ended = await record_since(st, "session_ended", before, 5.0)
    e = ended["payload"] if ended else {}
    dose_ul = e.get("session_ul", status["session_ul"])
    if args.json:
        json_out({"device": args.label, "address": found.device.address, "stopped": True,
                   "state": state_name(status), "end_reason": e.get("reason"),
                   "dose_ul": dose_ul, "dosing_s": e.get("dose_s", status["session_s"])})
    else:
        print(f"stopped the session on {args.label} after {dose_ul:g} µl "
              f"({state_name(status)} now)")
    return 0


# ---- sync ----------------------------------------------------------------------------------

@_command("sync")
async def _sync(args: argparse.Namespace) -> int:
    via = _via_app(args)
    if via is not None:
        # Into the app's history: the one it keeps synced whenever the steamer is in.
        got = via[0].post("/api/sync")
        if args.json:
            json_out({"device": args.label, "address": via[1]["address"], "via": "app",
                      "new_records": got["new_records"]})
        else:
            n = got["new_records"]
            print(f"synced {n} new record{'s' if n != 1 else ''} from {args.label} into "
                  "the steamer app's history")
        return 0
    keys = load_keys(args.keys)
    with Store.open(args.db) as store:
        say_if_created(store)
        found, air = await _find(args)
        address = found.device.address
        t0 = time.monotonic()
        async with connected(found, keys, air, auth=True) as st:
            journal = bytes(st.info["journal_id"]).hex()
            cursor = store.sync_cursor(address, journal, name=found.name,
                                       log_next=st.info["log_next"])
            if cursor.previous is not None:
                print(journal_line(args.label, cursor.previous, journal), file=sys.stderr,
                      flush=True)
            try:
                sink, res = await sync_device(st, store, cursor.device_id)
            except SteamerError as e:
                if e.code != "journal_changed":
                    raise
                raise DeviceError(f"{args.label}: {e}") from None
        sessions = store.sessions(cursor.device_id)
        out = {"device": args.label, "address": address, "device_id": cursor.device_id,
               "journal_id": journal, "new_records": sink.new,
               "duplicates": sink.duplicate, "last_seq": store.last_seq(cursor.device_id),
               "lost_records": res.lost_records, "lost": [list(r) for r in res.lost],
               "sessions": len(sessions), "db": str(store.path),
               "seconds": round(time.monotonic() - t0, 3)}
    if res.lost:
        print(lost_line(args.label, res), file=sys.stderr)
    if args.json:
        json_out(out)
    else:
        n = out["sessions"]
        print(f"synced {out['new_records']} new record{'s' if out['new_records'] != 1 else ''} "
              f"from {args.label}: {n} session{'s' if n != 1 else ''} of it in {out['db']} "
              "(`steamer sessions` lists them)")
    return 0


# ---- profiles ------------------------------------------------------------------------------

@_command("profile push")
async def _profile_push(args: argparse.Namespace) -> int:
    prof = read_profile_file(args.file)        # a wrong file fails before any scan
    via = _via_app(args)
    if via is not None:
        via[0].upload("/api/profiles", prof.data, prof.path.name)
        installed = via[0].get("/api/profiles")
        address = via[1]["address"]
    else:
        installed, address = await _push_here(args, prof)
    f = prof.fields
    ok = any(p["podlet_type"] == f["podlet_type"] and p["version"] == f["version"]
             for p in installed)
    if not ok:
        raise DeviceError(f"{args.label} acknowledged {prof.title} but does not list it")
    if args.json:
        json_out({"device": args.label, "address": address, "installed": True,
                   "file": str(prof.path), "podlet_type": f["podlet_type"],
                   "version": f["version"], "name": f["name"]} | (
                       {"via": "app"} if via is not None else {}))
    else:
        print(f"installed {prof.title} on {args.label}"
              + (" (through the steamer app)" if via is not None else ""))
    return 0


async def _push_here(args: argparse.Namespace, prof: Any) -> tuple[list[dict], str]:
    """Pushes `prof` over this program's own connection: the installed profiles and the
    steamer's address."""
    keys = load_keys(args.keys)
    found, air = await _find(args)
    async with connected(found, keys, air, auth=True) as st:
        try:
            # A lost link resumes from the steamer's offset; a commit whose answer was
            # lost counts once the steamer lists the profile.
            await st.push_profile(prof.data, reconnects=PUSH_RECONNECTS)
        except SteamerError as e:
            raise explain(e, args.label, f"profile {prof.title}") from None
        installed = await st.profiles()
    return installed, found.device.address


@_command("profile list")
async def _profile_list(args: argparse.Namespace) -> int:
    via = _via_app(args)
    if via is not None:
        profiles = via[0].get("/api/profiles")      # sorted, sha256 in hex
    else:
        keys = load_keys(args.keys)
        found, air = await _find(args)
        async with connected(found, keys, air, auth=True) as st:
            profiles = [dict(p, sha256=p["sha256"].hex())
                        for p in sorted(await st.profiles(), key=lambda p: p["podlet_type"])]
    if args.json:
        json_out(profiles)
    elif not profiles:
        print(f"{args.label} has no profiles (`steamer profile push` installs one)")
    else:
        print_table([("TYPE", "VERSION", "NAME")] + [
            (str(p["podlet_type"]), str(p["version"]), p["name"]) for p in profiles])
    return 0


# ---- the app ---------------------------------------------------------------------------

@_command("app")
async def _app(args: argparse.Namespace) -> int:
    from steamer.app.server import new_token, start
    from steamer.live import Hub
    air = sim_air(args.sim)
    keys = load_keys(args.keys)
    with Store.open(args.db) as store:
        hub = Hub(air, keys, store)
        token = new_token()
        runner, url = await start(hub, token, args.port)
        write_app_file(url.split("/?", 1)[0], token)
        print(url, flush=True)
        print("the app is open at the address above (this computer only); Ctrl-C ends it",
              file=sys.stderr, flush=True)
        if not args.no_browser:
            webbrowser.open(url)
        args.on_interrupt = "the app has stopped"
        try:
            await asyncio.Event().wait()
        finally:
            remove_app_file(token)
            await hub.close()
            await runner.cleanup()
    return 0


# ---- parsers -------------------------------------------------------------------------------



# ---- courses --------------------------------------------------------------------------

def _when(epoch_s: float | None, none: str = "now") -> str:
    return none if epoch_s is None else datetime.fromtimestamp(epoch_s).strftime("%Y-%m-%d %H:%M")


def _now_arg(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a date and time like 2026-12-02T18:00, "
                                          f"got {text!r}") from None


def _course_lines(prof: Any, pos: course.Position, p: dict) -> list[tuple[str, str]]:
    rows = [("course", course.course_text(p)), ("delivery", course.pattern_text(p)),
            ("next", pos.label), ("last", _when(pos.last_s, "none yet")),
            ("allowed", "now" if pos.next_allowed_s is None else "from " + _when(pos.next_allowed_s)),
            ("recommended", _when(pos.next_recommended_s, "nothing more planned")
             if pos.next_recommended_s is not None or pos.done else "now")]
    missed = pos.missed()
    rows.append(("missed", "; ".join(missed) if missed else "nothing"))
    return rows


def _acknowledged_here(args: argparse.Namespace, prof: Any, lines: list[str]) -> bool:
    """The user's explicit yes, or --yes."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise InputFileError("--acknowledge needs the user's answer: run it in a terminal, "
                             "or add --yes once the warnings were read")
    print(f"Before the first session with {prof.title}, read these warnings:")
    for line in lines:
        print(f"  - {line}")
    return input("Type yes to acknowledge them: ").strip().lower() == "yes"


@_command("course")
async def _course(args: argparse.Namespace) -> int:
    prof = read_profile_file(args.file)
    p = prof.fields
    if not course.is_course(p):
        raise InputFileError(f"{args.file}: {prof.title} is a format-1 profile: it has no "
                             "course, delivery pattern or warnings")
    now = time.time() if args.now is None else args.now
    with Store.open(args.db, create=args.db is None, readonly=True) as store:
        sessions = store.sessions()
        ack = store.acknowledgement(p["podlet_type"], p["version"])
    pos = course.position(p, course.starts_of(sessions, p["podlet_type"]), now)
    warnings = course.warning_lines(p)
    out: dict[str, Any] = course.view(p, sessions, now, ack)
    if args.ics:
        text = course.ics(p, pos, now)
        try:
            with open(args.ics, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        except OSError as e:
            raise InputFileError(f"{args.ics}: {e.strerror or e}") from None
        out["ics"] = args.ics
    if args.acknowledge:
        args.device = args.acknowledge
        if not _acknowledged_here(args, prof, warnings):
            raise DeviceError(f"not acknowledged: {prof.title} starts no session until "
                              "its warnings are")
        keys = load_keys(args.keys)
        found, air = await _find(args)
        async with connected(found, keys, air, auth=True) as st:
            try:
                await st.acknowledge_warnings(p["podlet_type"], p["version"])
            except SteamerError as e:
                raise explain(e, args.label, f"the acknowledgement of {prof.title}") from None
        with Store.open(args.db) as store:      # what the app and the next run read
            store.add_profile(prof.data, p["podlet_type"], p["version"], p["name"])
            ack = store.add_acknowledgement(p["podlet_type"], p["version"], p["name"],
                                            found.device.address)
        out.update(acknowledged_on=args.label, acknowledged_s=ack.epoch_s,
                   acknowledged_address=ack.address)
    if args.json:
        json_out(out)
        return 0
    print(f"{prof.title}")
    print_table([(k, v) for k, v in _course_lines(prof, pos, p)])
    if warnings:
        must = " (to be acknowledged before the first session)" if p.get("acknowledge") else ""
        print(f"warnings{must}:")
        for line in warnings:
            print(f"  - {line}")
        if ack is not None:
            print(f"acknowledged {_when(ack.epoch_s)}"
                  + (f" (sent to {ack.address})" if ack.address else ""))
    if args.ics:
        print(f"wrote the plan to {args.ics}")
    if args.acknowledge:
        print(f"acknowledged on {args.label}: its sessions of {prof.title} may start")
    return 0


RADIO_HELP = (f"Add --sim (or set {SIM_ENV}=1) to reach simulated steamers (`steamer sim "
              "serve`) on the simulated air at $STEAMER_AIR (default: this user's own, "
              "which `steamer sim serve` starts) "
              "instead of the Bluetooth adapter.")


def radio_options(p: argparse.ArgumentParser, *, device: bool = True) -> None:
    """--sim, --keys and (for commands naming a DEVICE) --scan-timeout."""
    p.add_argument("--sim", action="store_true",
                   help=f"use the simulated air, not Bluetooth (also: {SIM_ENV}=1)")
    p.add_argument("--keys", metavar="FILE",
                   help="this computer's pairing keys (default: $STEAMER_KEYS, else "
                        "keys.json in the user config folder, e.g. ~/.config/steamer)")
    if device:
        p.add_argument("--scan-timeout", type=positive_s, default=SCAN_S, metavar="S",
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
    """Adds scan, pair, status, session, sync, course and profile to the top-level
    subparsers."""
    p = _parser(groups, "scan", "list the steamers in range",
                "List the steamers advertising nearby: name, address, state, whether this "
                "computer is paired with each.",
                "  steamer scan\n  steamer scan --sim --json", _scan, device=False,
                json_help="print the list as JSON")
    p.add_argument("--timeout", type=positive_s, default=3.0, metavar="S",
                   help="how long to listen (default: %(default)g s)")

    p = _parser(groups, "pair", "pair this computer with a steamer (hold its button)",
                "Pair with DEVICE: press and hold the steamer's button; after 3 s its pairing "
                "window opens, and it stays open while the button is held (pairing takes "
                "up to ~10 s on a steamer). This waits for it (--timeout) and keeps the "
                "key. Commands "
                "that change something on the steamer need it.",
                "  steamer pair bathroom-steamer", _pair,
                json_help="print the result as JSON")
    p.add_argument("--timeout", type=positive_s, default=60.0, metavar="S",
                   help="how long to wait for the pairing window (default: %(default)g s)")

    p = _parser(groups, "status", "a steamer's temperatures, state, podlet, dose, faults",
                "Show DEVICE's state, boiler and outlet temperatures, heater and pump, the "
                "podlet, and faults; during a session the dose delivered, the dose still to "
                "go and the time left (the dose the session ends at: the profile's limit, "
                "or less when the podlet, the day's limit or the dosing time ends it "
                "first). --follow prints a line every --interval seconds until Ctrl-C.",
                "  steamer status bathroom-steamer\n"
                "  steamer status bathroom-steamer --follow --json", _status,
                json_help="print JSON (one object a line with --follow)")
    p.add_argument("--follow", action="store_true", help="keep printing until Ctrl-C")
    p.add_argument("--interval", type=positive_s, default=1.0, metavar="S",
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
                "them. A steamer whose log is new (its memory wiped) is synced from its "
                "start, and the command says so. `steamer sessions` and `steamer plot` show "
                "what it brought in.",
                "  steamer sync bathroom-steamer && steamer sessions", _sync,
                json_help="print the result as JSON")
    p.add_argument("--db", metavar="PATH",
                   help=f"the session database (default: ${DB_ENV}, else sessions.sqlite3 "
                        "in the user data folder, e.g. ~/.local/share/steamer); created, "
                        "with its folders, when missing, and the command says so")

    p = _parser(groups, "course", "a treatment course: where you are, what is next, warnings",
                "For FILE, a signed profile of format 2 (a course): which session is next "
                "(\"session 2 of 4\", or maintenance), when the steamer will allow it (its "
                "minimum spacing, which the steamer enforces) and when it is recommended, "
                "what was missed, from the sessions of its podlet type in the history "
                "(`steamer sync` brings them in); its delivery pattern and warnings. "
                "--ics writes the plan as a calendar. --acknowledge DEVICE shows the "
                "warnings, asks for an explicit yes (or takes --yes) and tells DEVICE, "
                "which starts no session of a profile that needs it until then.",
                "  steamer course vitamin-c.bin\n"
                "  steamer course vitamin-c.bin --ics course.ics\n"
                "  steamer course vitamin-c.bin --acknowledge bathroom-steamer", _course,
                device=False, json_help="print the course as JSON")
    p.add_argument("file", metavar="FILE", help="the signed profile (.bin)")
    p.add_argument("--db", metavar="PATH",
                   help=f"the session database (default: ${DB_ENV}, else sessions.sqlite3 "
                        "in the user data folder)")
    p.add_argument("--ics", metavar="FILE", help="write the planned sessions as iCalendar")
    p.add_argument("--acknowledge", metavar="DEVICE",
                   help="acknowledge the warnings on DEVICE (asks first)")
    p.add_argument("--yes", action="store_true",
                   help="with --acknowledge: the warnings were read; do not ask")
    p.add_argument("--now", type=_now_arg, metavar="DATETIME",
                   help="count the course as at this local time (default: now)")
    p.add_argument("--scan-timeout", type=positive_s, default=SCAN_S, metavar="S",
                   help="with --acknowledge: how long to look for DEVICE (default: %(default)g s)")

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

    p = groups.add_parser(
        "app", help="the app in your browser: pair, run sessions, see the history",
        description="Start the steamer app: a web page on this computer only "
                    "(127.0.0.1, with a secret token in its address) that scans for "
                    "steamers, pairs, runs and follows sessions, keeps the history synced "
                    "and installs profiles. It opens the browser on it and prints its "
                    "address; it runs until Ctrl-C. Add --sim for simulated steamers "
                    "(`steamer sim serve`).",
        epilog="Examples:\n  steamer sim serve --name demo &\n  steamer app --sim\n"
               "  steamer app --no-browser --port 8765",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    radio_options(p, device=False)
    p.add_argument("--db", metavar="PATH",
                   help=f"the session database (default: ${DB_ENV}, else sessions.sqlite3 "
                        "in the user data folder)")
    p.add_argument("--port", type=int, default=0, metavar="N",
                   help="the port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-browser", action="store_true",
                   help="print the address only, do not open a browser")
    p.set_defaults(func=_app)
