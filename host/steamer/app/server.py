"""The app's web server (aiohttp): the pages, a JSON API that does what the consumer
commands do through steamer.live's Hub, and a WebSocket live channel pushing the Hub's
events (status, scan, pair, link, history). It listens on 127.0.0.1 only and answers
only requests that carry its token (in the URL it opens, then a same-site cookie) with
its own Host and, when there is one, its own Origin: another page in the browser, or a
DNS-rebound name, is refused with 403.
"""
from __future__ import annotations

import asyncio
import hmac
import io
import json
import secrets
import socket
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import WSMsgType, web

from steamer import course_live
from steamer.devices import DeviceError, InputFileError
from steamer.live import PAIR_S, Hub
from steamer.session import session_phases
from steamer.store import StoreError, session_dict

STATIC = Path(__file__).parent / "static"
HOST = "127.0.0.1"
TOKEN_HEADER = "X-Steamer-Token"
UPLOAD_MAX_BYTES = 64 * 1024
HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)
TOKEN: web.AppKey[str] = web.AppKey("token", str)
# What a page may load or reach: this server only (no CDN, no other site).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def cookie_name(port: int) -> str:
    # Cookies are per host, not per port: one app on each port keeps its own.
    return f"steamer_token_{port}"


def refuse(why: str) -> web.Response:
    return web.Response(status=403, text=f"steamer app: refused: {why}\n",
                        content_type="text/plain", headers=SECURITY_HEADERS)


def _port(request: web.Request) -> int:
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sock[1]) if sock else 0


def check(request: web.Request, token: str) -> str | None:
    """Why `request` is refused (None when it is not): a Host other than this server's
    own (DNS rebinding), an Origin other than its own (a page of another site), or no or
    a wrong token."""
    port = _port(request)
    own = {f"{HOST}:{port}", f"localhost:{port}"}
    host = request.headers.get("Host", "")
    if host not in own:
        return (f"the Host header {host!r} is not this app's ({HOST}:{port}): a page that "
                "renamed itself to reach it (DNS rebinding)?")
    origin = request.headers.get("Origin")
    if origin is not None and origin not in {f"http://{h}" for h in own}:
        return f"the request comes from another site ({origin}), not from this app's page"
    given = (request.query.get("token") or request.headers.get(TOKEN_HEADER)
             or request.cookies.get(cookie_name(port)))
    if not given:
        return ("no token: open the address `steamer app` printed (it ends in "
                "?token=...)")
    if not hmac.compare_digest(given.encode(), token.encode()):
        return "wrong token: open the address the running `steamer app` printed"
    return None


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    why = check(request, request.app[TOKEN])
    if why:
        return refuse(why)
    try:
        response = await handler(request)
    except InputFileError as e:
        return _error(400, str(e))
    except (DeviceError, StoreError) as e:
        return _error(409, str(e))
    if not isinstance(response, web.WebSocketResponse):
        response.headers.update(SECURITY_HEADERS)
    if request.query.get("token"):
        response.set_cookie(cookie_name(_port(request)), request.app[TOKEN], httponly=True,
                            samesite="Strict", path="/")
    return response


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status, headers=SECURITY_HEADERS)


def _ok(data: Any = None) -> web.Response:
    return web.json_response({"ok": True} if data is None else data)


async def _body(request: web.Request) -> dict:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputFileError("the request's body is not JSON") from None
    if not isinstance(data, dict):
        raise InputFileError("the request's body is not a JSON object")
    return data


def _address(data: dict) -> str:
    address = data.get("address")
    if not isinstance(address, str) or not address:
        raise InputFileError("no steamer address given")
    return address


def _session_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise InputFileError(f"{request.match_info['id']!r} is not a session number") from None


# ---- routes -------------------------------------------------------------------------------

async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def live(request: web.Request) -> web.StreamResponse:
    """The live channel: each Hub event as one JSON text message; the page sends
    {"type": "scan"} to keep the scan list fresh."""
    hub = request.app[HUB]
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    queue: asyncio.Queue[dict] = asyncio.Queue(maxsize=256)

    def hear(event: dict) -> None:
        if queue.full():        # a stalled page loses the oldest, never blocks the hub
            queue.get_nowait()
        queue.put_nowait(event)
    stop = hub.subscribe(hear)

    async def send() -> None:
        while True:
            await ws.send_str(json.dumps(await queue.get(), ensure_ascii=False))
    sender = asyncio.ensure_future(send())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data.startswith("{"):
                if json.loads(msg.data).get("type") == "scan":
                    hub.want_scan()
    finally:
        stop()
        sender.cancel()
    return ws


async def held(request: web.Request) -> web.Response:
    return web.json_response(request.app[HUB].held())


async def status(request: web.Request) -> web.Response:
    return _ok(await request.app[HUB].status_when_read())


async def status_raw(request: web.Request) -> web.Response:
    """The newest status as the steamer sent it (what steamer.session.Progress reads)."""
    hub = request.app[HUB]
    await hub.status_when_read()    # refused in words when none is held or none came
    return _ok(hub.raw_status)


async def scan(request: web.Request) -> web.Response:
    request.app[HUB].want_scan()
    return _ok()


async def pair(request: web.Request) -> web.Response:
    data = await _body(request)
    timeout_s = data.get("timeout_s", PAIR_S)
    if not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 600:
        raise InputFileError("timeout_s: want seconds, more than 0 and at most 600")
    request.app[HUB].start_pairing(_address(data), float(timeout_s),
                                   reconnect=data.get("reconnect") is True)
    return _ok()


async def pair_state(request: web.Request) -> web.Response:
    """The newest "pair" event of the pairing started last (null before its first)."""
    return web.json_response(request.app[HUB].pair_state())


async def connect(request: web.Request) -> web.Response:
    await request.app[HUB].connect(_address(await _body(request)))
    return _ok()


async def disconnect(request: web.Request) -> web.Response:
    await request.app[HUB].disconnect()
    return _ok()


async def session_start(request: web.Request) -> web.Response:
    return _ok(await request.app[HUB].start_session())


async def session_end(request: web.Request) -> web.Response:
    """The session_ended record's payload at or after ?from=SEQ (null: none yet)."""
    try:
        end_from = int(request.query.get("from", ""))
        wait_s = min(10.0, max(0.0, float(request.query.get("wait_s", "0"))))
    except ValueError:
        raise InputFileError("from: want the journal seq session/start returned, "
                             "wait_s: seconds") from None
    return web.json_response(await request.app[HUB].session_end(end_from, wait_s))


async def session_stop(request: web.Request) -> web.Response:
    await request.app[HUB].stop_session()
    return _ok()


async def fault_ack(request: web.Request) -> web.Response:
    await request.app[HUB].ack_faults()
    return _ok()


async def profiles(request: web.Request) -> web.Response:
    return _ok(await request.app[HUB].profiles())


async def profile_push(request: web.Request) -> web.Response:
    data, name = await _upload(request)
    hub = request.app[HUB]
    got = await hub.push_profile(data, name)
    course_live.remember(hub.store, data, name)     # its course and warnings, for later
    return _ok(got)


async def _upload(request: web.Request) -> tuple[bytes, str]:
    data = await request.content.read(UPLOAD_MAX_BYTES + 1)
    name = request.headers.get("X-Filename", "profile.bin")[:200]
    if len(data) > UPLOAD_MAX_BYTES:
        raise InputFileError(f"{name} is too large for a signed profile")
    return data, name


async def course_get(request: web.Request) -> web.Response:
    """The course of the podlet in the held steamer, and the other known courses
    (steamer.course_live.course_of)."""
    return _ok(await course_live.held_course(request.app[HUB]))


async def course_profile(request: web.Request) -> web.Response:
    """Keeps a signed profile file (not installed: the steamer has it) for its course
    and warnings."""
    data, name = await _upload(request)
    course_live.remember(request.app[HUB].store, data, name)
    return _ok(await course_live.held_course(request.app[HUB]))


async def course_acknowledge(request: web.Request) -> web.Response:
    """The user's explicit acknowledgement of the warnings shown: sent to the steamer."""
    data = await _body(request)
    ptype, version = data.get("podlet_type"), data.get("version")
    if not isinstance(ptype, int) or not isinstance(version, int):
        raise InputFileError("podlet_type and version: want the course's numbers")
    if data.get("read") is not True:
        raise InputFileError("the warnings must be read and acknowledged (read: true)")
    return _ok(await course_live.acknowledge(request.app[HUB], ptype, version))


async def course_ics(request: web.Request) -> web.Response:
    """The plan of the known course of ?podlet_type=N as an iCalendar file."""
    try:
        ptype = int(request.query.get("podlet_type", ""))
    except ValueError:
        raise InputFileError("podlet_type: want the course's podlet type") from None
    name, text = course_live.plan_ics(request.app[HUB].store, ptype, time.time())
    return web.Response(text=text, content_type="text/calendar", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}.ics"'})


async def sync(request: web.Request) -> web.Response:
    return _ok({"new_records": await request.app[HUB].sync()})


async def sessions(request: web.Request) -> web.Response:
    by = request.query.get("by")
    if by is None:
        return _ok(request.app[HUB].sessions())
    if by == "course":
        return _ok(request.app[HUB].sessions_by_course())
    raise InputFileError(f"sessions can be grouped by 'course' only, not by {by!r}")


async def session(request: web.Request) -> web.Response:
    store = request.app[HUB].store
    sid = _session_id(request)
    s = store.session(sid)
    if s is None:
        raise StoreError(f"no session {sid}")
    samples = store.samples(sid)
    return _ok({"session": session_dict(s), "phases": session_phases(samples),
                "samples": {"t_s": [x.t_ms / 1000 for x in samples],
                            "boiler_c": [x.boiler_c for x in samples],
                            "outlet_c": [x.outlet_c for x in samples],
                            "heater_pct": [x.heater_pct for x in samples],
                            "dose_ul": [x.dose_ul for x in samples]}})


async def session_delete(request: web.Request) -> web.Response:
    request.app[HUB].store.delete_session(_session_id(request))
    return _ok()


def _csv(text: str, filename: str) -> web.Response:
    return web.Response(text=text, content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


async def sessions_csv(request: web.Request) -> web.Response:
    out = io.StringIO()
    request.app[HUB].store.export_csv(out)
    return _csv(out.getvalue(), "sessions.csv")


async def session_csv(request: web.Request) -> web.Response:
    sid = _session_id(request)
    store = request.app[HUB].store
    if store.session(sid) is None:
        raise StoreError(f"no session {sid}")
    out = io.StringIO()
    store.export_csv(out, sid)
    return _csv(out.getvalue(), f"session-{sid}.csv")


def make_app(hub: Hub, token: str) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=UPLOAD_MAX_BYTES + 4096)
    app[HUB], app[TOKEN] = hub, token
    r = app.router
    r.add_get("/", index)
    r.add_get("/ws", live)
    r.add_get("/api/held", held)
    r.add_get("/api/status", status)
    r.add_get("/api/status/raw", status_raw)
    r.add_post("/api/scan", scan)
    r.add_post("/api/pair", pair)
    r.add_get("/api/pair", pair_state)
    r.add_post("/api/connect", connect)
    r.add_post("/api/disconnect", disconnect)
    r.add_post("/api/session/start", session_start)
    r.add_post("/api/session/stop", session_stop)
    r.add_get("/api/session/end", session_end)
    r.add_post("/api/fault/ack", fault_ack)
    r.add_get("/api/profiles", profiles)
    r.add_post("/api/profiles", profile_push)
    r.add_post("/api/sync", sync)
    r.add_get("/api/course", course_get)
    r.add_post("/api/course/profile", course_profile)
    r.add_post("/api/course/acknowledge", course_acknowledge)
    r.add_get("/api/course.ics", course_ics)
    r.add_get("/api/sessions", sessions)
    r.add_get("/api/sessions.csv", sessions_csv)
    r.add_get("/api/sessions/{id}", session)
    r.add_get("/api/sessions/{id}/csv", session_csv)
    r.add_delete("/api/sessions/{id}", session_delete)
    r.add_static("/static/", STATIC)
    return app


async def start(hub: Hub, token: str, port: int = 0) -> tuple[web.AppRunner, str]:
    """Serves the app on 127.0.0.1:port (0: a free one); returns the runner (cleanup()
    stops it) and the address to open, token included."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as e:
        sock.close()
        raise DeviceError(f"cannot listen on {HOST}:{port}: {e.strerror or e} (another "
                          "program has it? try --port 0)") from None
    runner = web.AppRunner(make_app(hub, token), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner, f"http://{HOST}:{sock.getsockname()[1]}/?token={token}"
