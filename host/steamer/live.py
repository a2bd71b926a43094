"""A steamer held connected for as long as a program wants it, with what it says pushed
to subscribers: live scans, pairing with its progress in words, the status as a person's
view (steamer.session.status_view) a few times a second, session start and stop,
profiles, and the log synced into the store whenever the steamer is connected. The app
(steamer.app.server) is its face; other programs can hold a steamer the same way.

    hub = Hub(sim_air(True), load_keys(None), Store.open())
    hub.subscribe(print)                  # each event is a JSON-ready dict with "type"
    await hub.connect("bathroom-steamer")
    await hub.start_session()
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Callable

from bleak.exc import BleakError

from podproto import ProtocolError
from podproto.names import SESSION_STATES
from steamer.client import Found, KeyRing, LinkLost, Steamer, SteamerError
from steamer.devices import (DeviceError, connected, explain, label, last_record,
                             not_paired, read_profile_bytes, resolve, scan_all, scan_row,
                             state_name)
from steamer.session import (FAULT_ADVICE, PAIR_EXCHANGE_S, PODLET_REFUSALS, STATE_WORDS,
                             journal_next, pair_until, podlet_refused_text, record_since,
                             status_extra, status_view, sync_device)
from steamer import course
from steamer.store import Store, session_dict

POLL_S = 0.2            # how often the status is read while connected
SCAN_S = 1.5            # one scan of the live scan list
SCAN_FOR_S = 20.0       # a scan request keeps the list refreshed this long
PAIR_S = 60.0
RELINK_S = 1.0          # between attempts to bring a dropped link back
# A status asked for right after a connect waits this long for the connection's first
# (the connect syncs the log before it follows the status).
FIRST_STATUS_S = 10.0

Event = dict[str, Any]


def now_ms() -> float:
    """Wall-clock milliseconds: what pushed events are stamped with (a page compares
    them with its own clock to measure status-to-screen latency)."""
    return time.time() * 1000


def words(view: dict) -> dict:
    """A status view's state, fault and podlet in the words a person reads."""
    out: dict[str, Any] = {"state_text": STATE_WORDS.get(view["state"], view["state"])}
    fault = view.get("fault")
    if fault:
        what, todo = FAULT_ADVICE.get(fault, (f"fault {fault}", "press the button"))
        out["fault_text"], out["fault_todo"] = what, todo
    podlet = view["podlet_state"]
    if podlet == "refused":
        out["podlet_text"] = podlet_refused_text(view["podlet_refused"])
    elif podlet == "checking":
        out["podlet_text"] = "podlet being checked"
    elif podlet == "accepted":
        out["podlet_text"] = (f"podlet {view.get('profile') or 'type %s' % view['podlet_type']}"
                              + (f", {view['podlet_left_ul']} µl left"
                                 if view.get("podlet_left_ul") is not None else "")
                              + (f", expires {view['podlet_expiry']}"
                                 if view.get("podlet_expiry") else ""))
    else:
        out["podlet_text"] = "no podlet inserted"
    return out


class Hub:
    """Scans, pairs and holds one steamer at a time for its subscribers. Commands run one
    at a time on the link (a lock), between the status reads."""

    def __init__(self, air: Any, keys: KeyRing, store: Store) -> None:
        self.air, self.keys, self.store = air, keys, store
        self.subscribers: list[Callable[[Event], None]] = []
        self.last: dict[str, Event] = {}      # the newest event of each type
        self.found: Found | None = None
        self.st: Steamer | None = None
        self.lock = asyncio.Lock()
        self.pairing: asyncio.Task | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._poll: asyncio.Task | None = None
        self._scan: asyncio.Task | None = None
        self._scan_until = 0.0
        self._heard: dict[str, Found] = {}
        # The accepted podlet's record: (podlet type, µl left, expiry "YYYY-MM-DD").
        self._podlet_left: tuple[int, int | None, str | None] = (0, None, None)
        self.raw_status: dict | None = None     # the newest status as the steamer sent it
        self._device_id: str | None = None      # the held steamer's journal in the store

    # ---- the live channel -----------------------------------------------------------------
    def subscribe(self, fn: Callable[[Event], None]) -> Callable[[], None]:
        """fn hears every event from now on, after the newest one of each type so far;
        returns the call that stops it."""
        self.subscribers.append(fn)
        for event in list(self.last.values()):
            fn(event)
        return lambda: self.subscribers.remove(fn) if fn in self.subscribers else None

    def publish(self, event: Event) -> None:
        event.setdefault("sent_ms", now_ms())
        self.last[event["type"]] = event
        for fn in list(self.subscribers):
            fn(event)

    # ---- scan and pair -----------------------------------------------------------------
    def want_scan(self, for_s: float = SCAN_FOR_S) -> None:
        """Keeps scanning (a "scan" event after each) for the next for_s."""
        self._scan_until = time.monotonic() + for_s
        if self._scan is None or self._scan.done():
            self._scan = asyncio.ensure_future(self._scan_loop())

    async def _scan_loop(self) -> None:
        while time.monotonic() < self._scan_until:
            try:
                found = await scan_all(SCAN_S, self.air)
            except DeviceError as e:
                self.publish({"type": "scan", "steamers": [], "error": str(e)})
                await asyncio.sleep(SCAN_S)
                continue
            self._heard.update({f.device.address: f for f in found})
            rows = [scan_row(f, self.keys) for f in found]
            if self.found is not None and self.st is not None:   # it does not advertise
                address = self.found.device.address
                rows = [r for r in rows if r["address"] != address]
                rows.insert(0, dict(scan_row(self.found, self.keys), connected=True,
                                    state=self.last.get("status", {}).get("state")))
            self.publish({"type": "scan", "steamers": rows})

    async def _found(self, address: str) -> Found:
        if address in self._heard:
            return self._heard[address]
        found = await resolve(address, air=self.air)
        self._heard[found.device.address] = found
        return found

    def start_pairing(self, address: str, timeout_s: float = PAIR_S,
                      reconnect: bool = False) -> None:
        """Pairs with the steamer at `address` in the background; "pair" events say how
        it goes (phase waiting, exchanging, paired or failed, with left_s and text).
        With `reconnect`, the steamer is held again once paired (as the page does when
        it sees "paired"). pair_state() is the newest of these events."""
        if self.pairing is not None and not self.pairing.done():
            raise DeviceError("already pairing: wait for it to finish")
        self.last.pop("pair", None)
        self.pairing = asyncio.ensure_future(self._pair(address, timeout_s, reconnect))

    def pair_state(self) -> Event | None:
        """The newest "pair" event of the pairing started last (None before its first)."""
        return self.last.get("pair")

    async def _pair(self, address: str, timeout_s: float, reconnect: bool = False) -> None:
        def phase(name: str, left_s: float) -> None:
            text = ("waiting for the pairing window: keep holding the button"
                    if name == "waiting" else
                    f"exchanging keys, about {PAIR_EXCHANGE_S} s: keep holding the button")
            self.publish({"type": "pair", "address": address, "phase": name,
                          "left_s": round(max(0.0, left_s)), "text": text})
        try:
            await self.disconnect()
            found = await self._found(address)
            name = label(found)
            phase("waiting", timeout_s)
            async with connected(found, self.keys, self.air, auth=False) as st:
                await pair_until(st, name, timeout_s, phase)
        except (DeviceError, SteamerError, BleakError, asyncio.TimeoutError) as e:
            self.publish({"type": "pair", "address": address, "phase": "failed",
                          "text": f"not paired: {e}"})
            return
        if reconnect:
            try:
                await self.connect(address)
            except (DeviceError, SteamerError, BleakError, asyncio.TimeoutError) as e:
                self.publish({"type": "pair", "address": address, "phase": "paired",
                              "text": f"paired with {name}, but not connected again: {e}"})
                return
        self.publish({"type": "pair", "address": address, "phase": "paired",
                      "text": f"paired with {name}: you can let go of the button"})

    # ---- the held connection ----------------------------------------------------------
    async def connect(self, address: str) -> None:
        """Connects to the paired steamer at `address` (dropping any other), sets its
        clock, syncs its log and follows its status."""
        await self.disconnect()
        found = await self._found(address)
        if self.keys.get(found.device.address) is None:
            raise not_paired(label(found))
        stack = contextlib.AsyncExitStack()
        try:
            st = await stack.enter_async_context(connected(found, self.keys, self.air,
                                                           auth=True))
            await st.set_clock()
        except BaseException:
            await stack.aclose()
            raise
        self._stack, self.st, self.found = stack, st, found
        self.publish({"type": "link", "up": True, "device": label(found),
                      "address": found.device.address})
        await self.sync()
        self._poll = asyncio.ensure_future(self._follow(st))

    async def disconnect(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poll
        if self._stack is not None:
            with contextlib.suppress(SteamerError, BleakError, OSError):
                await self._stack.aclose()
        if self.st is not None:
            self.publish({"type": "link", "up": False, "device": self.name, "closed": True})
        self._stack = self._poll = self.st = None
        self.raw_status = None
        self.last.pop("status", None)

    def held(self) -> dict | None:
        """The connected steamer ({"device", "address"}), or None."""
        if self.st is None or self.found is None:
            return None
        return {"device": self.name, "address": self.found.device.address}

    async def status_when_read(self, wait_s: float = FIRST_STATUS_S) -> dict:
        """status(), waiting up to wait_s for the first one of a connection: a connect
        says the link is up, then syncs the log, and only then follows the status."""
        deadline = time.monotonic() + wait_s
        while (self.st is not None and self.last.get("status") is None
               and time.monotonic() < deadline):
            await asyncio.sleep(0.05)
        return self.status()

    def status(self) -> dict:
        """The connected steamer's newest status view (the last "status" event)."""
        self._held()
        view = self.last.get("status")
        if view is None:
            raise DeviceError(f"{self.name} has not sent its status yet: try again")
        return view

    @property
    def name(self) -> str:
        return label(self.found) if self.found else "the steamer"

    def _held(self) -> Steamer:
        if self.st is None:
            raise DeviceError("no steamer is connected: pick one on Nearby steamers")
        return self.st

    async def _follow(self, st: Steamer) -> None:
        extra: dict = {}
        last_key: tuple | None = None
        rate: float | None = None
        while True:
            try:
                async with self.lock:
                    status = await st.status()
                    key = (state_name(status), status["podlet_state"], status["podlet_type"],
                           status["fault"])
                    if key != last_key:
                        extra = await self._extra(st, status)
            except (LinkLost, BleakError, SteamerError, ProtocolError, OSError):
                await self._relink(st)
                last_key = None
                continue
            state = state_name(status)
            if last_key is not None and key[0] != last_key[0]:
                rate = None
                if state not in SESSION_STATES:
                    asyncio.ensure_future(self.sync())
            last_key = key
            rate = max(rate or 0, status["pump_ul_min"]) or None
            view = status_view(status, extra, rate)
            view.update(words(view), type="status", device=self.name)
            self.raw_status = status
            self.publish(view)
            await asyncio.sleep(POLL_S)

    async def _extra(self, st: Steamer, status: dict) -> dict:
        out = await status_extra(st, status, True)
        kind = status["podlet_type"]
        if kind and status["podlet_state"] == 2:     # accepted
            # Its record goes from the steamer once synced: the last one read stands
            # while the same podlet type stays in.
            rec = await last_record(st, "podlet_accepted", 200)
            if rec is not None:
                p = rec["payload"]
                self._podlet_left = (kind, p.get("left_ul"), p.get("expiry") or None)
            if self._podlet_left[0] == kind:
                out["podlet_left_ul"] = self._podlet_left[1]
                out["podlet_expiry"] = self._podlet_left[2]
        return out

    async def _relink(self, st: Steamer) -> None:
        """Brings a dropped link back, saying so; the page keeps its place meanwhile."""
        self.publish({"type": "link", "up": False, "device": self.name})
        while True:
            try:
                async with self.lock:
                    await st.reconnect()
                self.publish({"type": "link", "up": True, "device": self.name,
                              "address": st.address})
                return
            except (SteamerError, BleakError, OSError, asyncio.TimeoutError):
                await asyncio.sleep(RELINK_S)

    # ---- commands ---------------------------------------------------------------------
    async def start_session(self) -> dict:
        """Starts a session; returns its session_started record's payload ({} when none
        was read) and end_from, the journal seq its session_ended record comes at or
        after (session_end)."""
        st = self._held()
        async with self.lock:
            status = await st.status()
            state = state_name(status)
            if state in SESSION_STATES:
                raise DeviceError(f"{self.name} is busy: a session is already running")
            if state == "cooldown":
                raise DeviceError(f"{self.name} is cooling down after a session: try again "
                                  "once it says ready")
            if status["podlet_state"] == 3:
                why = PODLET_REFUSALS.get(
                    status_view(status, {})["podlet_refused"] or "other")
                raise DeviceError(f"{self.name} refused its podlet: {why}")
            try:
                await st.set_clock()
                before = await journal_next(st)
                await st.start_session(status["podlet_type"])
            except SteamerError as e:
                raise explain(e, self.name, "to start a session") from None
        started = await self._record_since("session_started", before, 3.0)
        # This session's end is journaled after its start: an older end is the last one's.
        return {"started": started["payload"] if started else {},
                "end_from": started["seq"] + 1 if started else before}

    async def session_end(self, end_from: int, wait_s: float = 0.0) -> dict | None:
        """The payload of the session_ended record numbered end_from or later (waiting
        up to wait_s for it), or None. Read from the steamer, else from the history (a
        sync may have let the steamer drop it)."""
        rec = await self._record_since("session_ended", end_from, wait_s)
        return rec["payload"] if rec else None

    async def _record_since(self, kind: str, first_seq: int, wait_s: float) -> dict | None:
        """steamer.session.record_since, taking the link between the status reads only
        (the page's status goes on meanwhile), and looking in the history as well."""
        st = self._held()
        deadline = time.monotonic() + wait_s
        while True:
            async with self.lock:
                rec = await record_since(st, kind, first_seq)
            if rec is None and self._device_id is not None:
                rec = next((r for r in reversed(self.store.records(self._device_id))
                            if r["kind"] == kind and r["seq"] >= first_seq), None)
            if rec is not None or time.monotonic() >= deadline:
                return rec
            await asyncio.sleep(0.2)

    async def stop_session(self) -> None:
        st = self._held()
        async with self.lock:
            try:
                await st.stop_session()
            except SteamerError as e:
                raise explain(e, self.name, "to stop") from None

    async def ack_faults(self) -> None:
        st = self._held()
        async with self.lock:
            try:
                await st.ack_faults()
            except SteamerError as e:
                raise explain(e, self.name, "to clear the fault") from None

    async def profiles(self) -> list[dict]:
        st = self._held()
        async with self.lock:
            got = await st.profiles()
        return sorted((dict(p, sha256=bytes(p["sha256"]).hex()) for p in got),
                      key=lambda p: p["podlet_type"])

    async def push_profile(self, data: bytes, filename: str = "profile.bin") -> dict:
        """Installs a signed profile (the file's bytes); the steamer checks it."""
        prof = read_profile_bytes(data, filename)
        st = self._held()
        async with self.lock:
            try:
                await st.push_profile(prof.data, reconnects=3)
            except SteamerError as e:
                raise explain(e, self.name, f"profile {prof.title}") from None
        return {"installed": prof.title, **{k: prof.fields[k] for k in
                                            ("podlet_type", "version", "name")}}

    async def sync(self) -> int:
        """Pulls the connected steamer's new log records into the store; publishes a
        "history" event. Returns the number of new records."""
        if self.st is None or self.found is None:
            return 0
        st = self.st
        async with self.lock:
            try:
                cursor = self.store.sync_cursor(self.found.device.address,
                                                bytes(st.info["journal_id"]).hex(),
                                                name=self.found.name,
                                                log_next=st.info["log_next"])
                self._device_id = cursor.device_id
                sink, _res = await sync_device(st, self.store, cursor.device_id)
            except (SteamerError, BleakError) as e:
                self.publish({"type": "history", "error": f"sync failed: {e}"})
                return 0
        self.publish({"type": "history", "new_records": sink.new,
                      "sessions": len(self.store.sessions())})
        return sink.new

    def _names(self) -> dict[str, str]:
        """Each steamer's name in the history by its id (its id when it has none)."""
        return {d.id: d.name or d.id for d in self.store.devices()}

    def sessions(self) -> list[dict]:
        """The history's sessions, newest first, with their steamer's name."""
        names = self._names()
        return [dict(session_dict(s), device=names.get(s.device_id, s.device_id))
                for s in reversed(self.store.sessions())]

    def sessions_by_course(self) -> list[dict]:
        """The history's sessions grouped by course (steamer.course.group_by_course, as
        `steamer sessions --by-course` prints them): each group its podlet type, profile,
        count and total dose, its sessions oldest first, numbered from 1 (`n`)."""
        names = self._names()
        return [{"podlet_type": g.podlet_type, "profile": g.profile,
                 "count": len(g.sessions), "dose_ul": sum(s.dose_ul for s in g.sessions),
                 "sessions": [dict(session_dict(s), n=n,
                                   device=names.get(s.device_id, s.device_id))
                              for n, s in enumerate(g.sessions, 1)]}
                for g in course.group_by_course(self.store.sessions())]

    async def close(self) -> None:
        for task in (self._scan, self.pairing):
            if task is not None:
                task.cancel()
        await self.disconnect()
