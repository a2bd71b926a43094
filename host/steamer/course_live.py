"""The course of the podlet in a steamer held by steamer.live's Hub, for the app
(steamer.app.server) and any program holding a steamer the same way: the signed
profiles kept in the store matched to the steamer's profile list (which carries only
their SHA-256), the course in steamer.course.view's words and times, and the warnings
acknowledged to the steamer (`warnings_ack`) and recorded in the store.

    prof = remember(hub.store, data, "vitamin-c.bin")       # a signed profile file
    got = await held_course(hub)                            # {"course": {...}, ...}
    await acknowledge(hub, got["podlet_type"], got["course"]["version"])
"""
from __future__ import annotations

import time
from typing import Any

from steamer import course
from steamer.client import SteamerError
from steamer.devices import DeviceError, ProfileFile, explain, read_profile_bytes
from steamer.live import Hub
from steamer.store import KnownProfile, Store


def remember(store: Store, data: bytes, filename: str = "profile.bin") -> ProfileFile:
    """Keeps a signed profile file's bytes in the store (ProfileFileError when they are
    not a signed profile); returns it decoded."""
    prof = read_profile_bytes(data, filename)
    f = prof.fields
    store.add_profile(prof.data, f["podlet_type"], f["version"], f["name"])
    return prof


def fields_of(known: KnownProfile) -> dict:
    return read_profile_bytes(known.data, f"{known.name}.bin").fields


def newest_courses(store: Store) -> dict[int, KnownProfile]:
    """The kept format-2 profiles, the newest version of each podlet type."""
    out: dict[int, KnownProfile] = {}
    for k in store.profiles():          # newest version first within a type
        if k.podlet_type not in out and course.is_course(fields_of(k)):
            out[k.podlet_type] = k
    return out


def course_of(store: Store, listed: list[dict] | None, podlet_type: int | None,
              address: str | None, now_s: float) -> dict:
    """What the app shows of courses. `listed` is the held steamer's profile list
    (Hub.profiles: sha256 in hex; None when no steamer is held), podlet_type the one in
    it (None: none), address the steamer's. Returns {"held", "podlet_type", "listed"
    (the steamer's profile of that type, or None), "known" (this computer has its
    signed file), "format", "course" (steamer.course.view, or None), "needs_ack" (its
    warnings must be acknowledged to this steamer and were not), "courses" (the other
    kept course profiles' views)}."""
    sessions = store.sessions()
    mine = next((p for p in listed or [] if p["podlet_type"] == podlet_type), None)
    known = store.profile(mine["sha256"]) if mine else None
    out: dict[str, Any] = {"held": listed is not None, "podlet_type": podlet_type,
                           "listed": None if mine is None else {
                               k: mine[k] for k in ("name", "version", "sha256")},
                           "known": known is not None, "format": None, "course": None,
                           "needs_ack": False}
    if known is not None:
        p = fields_of(known)
        out["format"] = p.get("format", 1)
        if course.is_course(p):
            ack = store.acknowledgement(p["podlet_type"], p["version"], address)
            out["course"] = course.view(p, sessions, now_s, ack)
            out["needs_ack"] = bool(p.get("acknowledge")) and ack is None
    out["courses"] = [course.view(fields_of(k), sessions, now_s,
                                  store.acknowledgement(k.podlet_type, k.version))
                      for t, k in sorted(newest_courses(store).items())
                      if known is None or t != known.podlet_type]
    return out


def _held_podlet(hub: Hub) -> int | None:
    view = hub.last.get("status")
    return None if view is None else view.get("podlet_type")


async def held_course(hub: Hub, now_s: float | None = None) -> dict:
    """course_of for the steamer the hub holds (or none)."""
    held = hub.held()
    listed = await hub.profiles() if held else None
    return course_of(hub.store, listed, _held_podlet(hub) if held else None,
                     held["address"] if held else None,
                     time.time() if now_s is None else now_s)


def known_course(store: Store, podlet_type: int) -> dict:
    """The newest kept course profile of podlet_type (DeviceError when none is kept)."""
    k = newest_courses(store).get(podlet_type)
    if k is None:
        raise DeviceError(f"no course profile of podlet type {podlet_type} is known here: "
                          "open its signed profile file first")
    return fields_of(k)


def plan_ics(store: Store, podlet_type: int, now_s: float) -> tuple[str, str]:
    """The known course of podlet_type's plan from the history at now_s: (the profile's
    name, the .ics text, steamer.course.ics)."""
    p = known_course(store, podlet_type)
    pos = course.position(p, course.starts_of(store.sessions(), podlet_type), now_s)
    return p["name"], course.ics(p, pos, now_s)


async def acknowledge(hub: Hub, podlet_type: int, version: int) -> dict:
    """Sends the user's acknowledgement of the warnings of the held steamer's profile of
    podlet_type at version (the one whose warnings were shown: its signed file must be
    kept here) and records it in the store; returns held_course after it."""
    held = hub.held()
    if held is None or hub.st is None:
        raise DeviceError("no steamer is connected: pick one on Nearby steamers")
    listed = await hub.profiles()
    mine = next((p for p in listed if p["podlet_type"] == podlet_type), None)
    if mine is None:
        raise DeviceError(f"{hub.name} has no profile for podlet type {podlet_type}")
    known = hub.store.profile(mine["sha256"])
    if known is None or known.version != version:
        raise DeviceError(f"the warnings of {mine['name']} v{mine['version']} were not "
                          "shown here: open its signed profile file first")
    async with hub.lock:
        try:
            await hub.st.acknowledge_warnings(podlet_type, version)
        except SteamerError as e:
            raise explain(e, hub.name, f"the acknowledgement of {known.name} "
                                       f"v{version}") from None
    hub.store.add_acknowledgement(podlet_type, version, known.name, held["address"])
    return await held_course(hub)
