"""The host commands of the BLE link (fw.ble): authentication, sessions, profile upload,
log sync. Functions of the Link (`link`), kept apart so each module compiles in a
board's heap.

Unauthenticated hosts get podproto.pairing.OPEN (hello, status_get, pair_request,
auth_response) only; an authenticated host's every other frame carries the next
command counter (or one up to CTR_SKIP_MAX past it, for frames lost on the way) and its
tag (podproto.pairing), checked by admit() before it runs.
"""
import hashlib
import os
from binascii import hexlify

from micropython import const

from podproto import logevents
from podproto import messages
from podproto import pairing

from fw import codes

_MAX_PROFILE = const(512)
# Records per log_records reply: the frame (13 bytes + logevents.WIRE_BYTES each) stays
# within info.max_frame (1024 bytes), so the host can tell a short (caught-up) reply
# from a full one.
LOG_RECORDS_MAX = const(22)
_LOG_READ = const(22)          # journal records parsed at a time
_LOG_PENDING = const(16)       # log reads a host may have outstanding
TX_HIGH = const(48)            # PDUs queued for the stack before commands and log reads wait
# A command's counter may be ahead of the next one expected by the frames the host's
# stack dropped (writes without response are not acknowledged), at most one a credit
# (fw.ble RX_SLOTS); never behind (a replay). The tag is checked before it moves.
CTR_SKIP_MAX = const(16)


def admit(link, msg, frame):
    """True when msg may run: an OPEN one, or a command of the authenticated host with
    a good tag and the next counter. Otherwise refuses it (the error event names why)
    and the connection goes on as before: a forged, replayed or reordered frame costs
    the genuine host nothing. frame is msg's bytes (valid during this call only)."""
    t = msg["type"]
    if t in pairing.OPEN:
        return True
    if t not in _HANDLERS:
        link.refuse("unknown_type", type_code(msg), msg["id"], "not a command: " + t)
        return False
    if link.authed is None:
        link.refuse("auth_required", type_code(msg), msg["id"], t + ": authenticate first")
        return False
    why = None
    if not msg["flags"] & messages.FLAG_MAC:
        why = "no command tag"
    elif not link.cmd_ctr <= msg["ctr"] <= link.cmd_ctr + CTR_SKIP_MAX:
        why = "counter %d, expected %d..%d" % (msg["ctr"], link.cmd_ctr,
                                                link.cmd_ctr + CTR_SKIP_MAX)
    elif not pairing.tag_ok(link.session, frame, msg):
        why = "bad command tag"
    if why is not None:
        link.refuse("auth_failed", type_code(msg), msg["id"], t + ": " + why)
        if not link.auth_rejects:
            # Once per connection in the journal: a flood of forgeries writes no flash.
            link.app.emit({"event": "command_rejected", "reason": "auth_failed: " + why})
        link.auth_rejects += 1
        return False
    link.cmd_ctr = msg["ctr"] + 1
    return True


def handle(link, msg):
    """Runs a message admit() let through."""
    _HANDLERS[msg["type"]](link, msg)


def _hello(link, msg):
    link.dev_nonce = os.urandom(16)
    link.authed = None
    link.session = None
    link.send({"type": "auth_challenge", "nonce": link.dev_nonce})


def _status_get(link, msg):
    link.send(link.status())


# Pairing: the X25519 work runs in slices (pair_slices, from service()), as many per
# period as the board runs signature-check slices; the answer goes out when it is done.


def _pair(link, msg):
    if not link.app.pairing_open():
        link.refuse("bad_state", 0x10, msg["id"], "pairing window closed: hold the button")
        return
    if link.pairing is not None:
        link.refuse("busy", 0x10, msg["id"], "pairing under way")
        return
    dev_nonce = os.urandom(16)
    link.pairing = (pairing.respond_steps(msg["host_pub"], msg["host_nonce"], dev_nonce),
                    pairing.host_id_of(msg["host_pub"]), dev_nonce, msg["id"])


def pair_slices(link, n):
    """Up to n slices of the pairing under way; answers the host once it is done."""
    p = link.pairing
    while n > 0:
        n -= 1
        try:
            next(p[0])
        except StopIteration as done:
            link.pairing = None
            _paired(link, p, done.value)
            return


def _paired(link, p, got):
    host_id = p[1]
    if got is None:
        link.refuse("auth_failed", 0x10, p[3], "host key shares no secret")
        return
    dev_pub, key = got
    # Kept for this connection only until the host proves it holds the key (its first
    # authentication under it): a replayed request, whose sender cannot, changes nothing.
    link.pending_key = (host_id, key)
    link.send({"type": "pair_challenge", "dev_pub": dev_pub, "dev_nonce": p[2]})
    link.send({"type": "key_confirm", "mac": pairing.pair_confirm(key, host_id)})


def _authenticate(link, msg):
    nonce = link.dev_nonce
    link.dev_nonce = None          # one answer per challenge
    key = _proved_pending(link, msg, nonce) or link.keys.get(msg["host_id"])
    if nonce is None or key is None or not pairing.equal(
            msg["mac"], pairing.auth_mac(key, nonce, msg["nonce"], msg["host_id"])):
        link.authed = None
        link.session = None
        link.refuse("auth_failed", 0x13, msg["id"],
                     "unknown host" if key is None else "bad challenge response")
        return
    host_id = bytes(msg["host_id"])
    link.authed = host_id
    link.session = pairing.session_pads(key, nonce, msg["nonce"], host_id)
    link.cmd_ctr = pairing.FIRST_CTR
    link.keys.used(host_id)
    link.send({"type": "key_confirm", "mac": pairing.device_mac(key, msg["nonce"], nonce)})


def _proved_pending(link, msg, nonce):
    """The key this connection's pairing made, stored now if msg (an auth_response)
    proves the host holds it; else None."""
    p = link.pending_key
    if p is None or nonce is None or p[0] != msg["host_id"] or not pairing.equal(
            msg["mac"], pairing.auth_mac(p[1], nonce, msg["nonce"], msg["host_id"])):
        return None
    link.pending_key = None
    link.keys.put(p[0], p[1])
    link.app.emit({"event": "host_paired", "host": hexlify(p[0]).decode()})
    return p[1]


def _run(link, msg, name, arg):
    """Runs an app command and answers with ack, or error naming the refusal. A command
    whose decision waits for a signature check (a profile commit; a session start while
    a podlet is being checked) is answered once it is decided, a few seconds later, if
    the same authenticated session is still there to hear it."""
    authed = link.authed
    app = link.app
    waits = []

    def answer(got):
        if link.authed is authed:
            _answer(link, msg, got)

    def run(_arg):
        waits.append(app.command(name, arg, answer))

    got = app.collect(run, None)
    if not waits[0]:
        _answer(link, msg, got)


def _answer(link, msg, got):
    for rec in got:
        ev = rec.get("event", "")
        if ev.endswith("_refused") or ev.endswith("_rejected"):
            reason = str(rec.get("reason", ev))
            if reason in messages.ERR_NAMES:
                code = reason
            elif ev == "profile_rejected":
                code = "envelope"
            else:
                code = "bad_state"
            link.refuse(code, type_code(msg), msg["id"], reason)
            return
    link.ack(msg)


def _c_session_start(link, msg):
    _run(link, msg, "start_session", None)


def _c_session_stop(link, msg):
    _run(link, msg, "stop_session", None)


def _c_set_clock(link, msg):
    _run(link, msg, "set_clock", msg["epoch_s"])


def _c_fault_ack(link, msg):
    _run(link, msg, "ack_faults", None)


def _c_warnings_ack(link, msg):
    # Only an authenticated host gets here (admit): the one named in the record.
    _run(link, msg, "ack_warnings", (msg["podlet_type"], msg["version"],
                                     hexlify(link.authed).decode()))


def _c_fault_list_get(link, msg):
    faults = []
    for f in link.app.faults()[-16:]:
        code = _index(codes.FAULT_NAMES, f["code"])
        faults.append({"code": code, "sensor": _index(codes.SENSOR_NAMES, f["sensor"]),
                       "raw": f["raw"] & 0xFFFF, "value": f["value"], "limit": f["limit"],
                       "unit": codes.FAULT_UNITS[code], "uptime_s": f["uptime_s"]})
    link.send({"type": "fault_list", "faults": faults})


def _c_profile_list_get(link, msg):
    out = []
    for p in link.app.profiles.values():
        out.append({"podlet_type": p["podlet_type"], "version": p["version"],
                    "name": p["name"], "sha256": p["sha256"]})
    link.send({"type": "profile_list", "profiles": out})


# Profile upload: the bytes go to a file under data_dir as they come, with its size
# and SHA-256 beside it, so that after a dropped link (or a reset) the host resumes
# from the device's offset. Commit checks the whole and installs it in one step.


def _upload(link):
    try:
        with open(link.prof_dir + "/meta", "rb") as f:
            meta = f.read()
        size = int.from_bytes(meta[:4], "little")
        try:
            got = os.stat(link.prof_dir + "/data")[6]
        except OSError:
            got = 0
        return size, meta[4:36], got
    except OSError:
        return None


def _c_profile_begin(link, msg):
    size = msg["size"]
    if size < 1 or size > _MAX_PROFILE:
        link.app.profile_refused("too_large")
        link.refuse("too_large", 0x30, msg["id"], "profile: %d bytes" % size)
        return
    up = _upload(link)
    if up is None or up[0] != size or up[1] != msg["sha256"] or up[2] > size:
        _clear_upload(link)
        with open(link.prof_dir + "/data", "wb"):
            pass
        with open(link.prof_dir + "/meta", "wb") as f:
            f.write(size.to_bytes(4, "little") + bytes(msg["sha256"]))
        up = (size, msg["sha256"], 0)
    link.send({"type": "profile_offset", "size": size, "offset": up[2]})


def _c_profile_resume(link, msg):
    up = _upload(link)
    if up is None:
        link.refuse("not_found", 0x34, msg["id"], "no upload in progress")
        return
    link.send({"type": "profile_offset", "size": up[0], "offset": up[2]})


def _c_profile_chunk(link, msg):
    up = _upload(link)
    if up is None:
        link.refuse("bad_state", 0x31, msg["id"], "no upload in progress")
        return
    data = msg["data"]
    if msg["offset"] != up[2]:
        link.refuse("bad_offset", 0x31, msg["id"], "offset %d, at %d" % (msg["offset"], up[2]))
        return
    if up[2] + len(data) > up[0]:
        link.app.profile_refused("too_large")
        link.refuse("too_large", 0x31, msg["id"], "past the announced size")
        return
    with open(link.prof_dir + "/data", "ab") as f:
        f.write(data)
    if msg["flags"] & messages.FLAG_ACK_REQ or up[2] + len(data) == up[0]:
        link.send({"type": "profile_offset", "size": up[0], "offset": up[2] + len(data)})


def _c_profile_abort(link, msg):
    _clear_upload(link)
    link.ack(msg)


def _c_profile_commit(link, msg):
    up = _upload(link)
    if up is None or up[2] != up[0]:
        link.refuse("bad_state", 0x32, msg["id"], "upload incomplete")
        return
    with open(link.prof_dir + "/data", "rb") as f:
        data = f.read()
    if hashlib.sha256(data).digest() != up[1]:
        _clear_upload(link)
        link.app.profile_refused("bad_hash")
        link.refuse("bad_hash", 0x32, msg["id"], "sha256 mismatch")
        return
    _clear_upload(link)
    # The app checks signature, envelope and version, a slice a period, and installs
    # atomically; the ack (or error) goes out then.
    _run(link, msg, "install_profile", data)


def _clear_upload(link):
    for name in ("meta", "data"):
        try:
            os.remove(link.prof_dir + "/" + name)
        except OSError:
            pass


def _c_log_read(link, msg):
    if bytes(msg["journal_id"]) != link.app.journal.journal_id:
        # The host's cursor counts in another journal (this address's before a reformat).
        link.refuse("not_found", 0x40, msg["id"], "log_read: not this steamer's journal")
        return
    if len(link.log_reqs) >= _LOG_PENDING:
        link.refuse("busy", 0x40, msg["id"], "too many log reads pending")
        return
    link.log_reqs.append((msg["from_seq"], msg["max_records"]))


def _c_log_ack(link, msg):
    j = link.app.journal
    if bytes(msg["journal_id"]) != j.journal_id:
        # Stored from another journal (this address's before a reformat): not ours to drop.
        link.refuse("not_found", 0x42, msg["id"], "log_ack: not this steamer's journal")
        return
    j.ack(msg["seq"])
    link.ack(msg)


def serve_logs(link, replies=_LOG_PENDING):
    """Answers up to `replies` pending log reads while the notification queue has room.
    A reply holds min(max_records, LOG_RECORDS_MAX) records when the journal has them;
    the journal is read a few records at a time so a reply never needs much heap."""
    while replies > 0 and link.log_reqs and len(link.tx) < TX_HIGH:
        replies -= 1
        from_seq, most = link.log_reqs.pop(0)
        want = min(most, LOG_RECORDS_MAX)
        recs = []
        while len(recs) < want:
            got = link.app.journal.read(from_seq, min(_LOG_READ, want - len(recs)))
            if not got:
                break
            for seq, rec in got:
                recs.append(logevents.to_wire(seq, rec))
            from_seq = got[-1][0] + 1
        link.send({"type": "log_records", "records": recs})


# Message type -> handler: podproto.pairing.OPEN's, then the commands (admit() refuses
# any other type before it gets here).
_HANDLERS = {
    "hello": _hello, "status_get": _status_get, "pair_request": _pair,
    "auth_response": _authenticate,
    "session_start": _c_session_start, "session_stop": _c_session_stop,
    "set_clock": _c_set_clock, "profile_begin": _c_profile_begin,
    "profile_chunk": _c_profile_chunk, "profile_commit": _c_profile_commit,
    "profile_abort": _c_profile_abort, "profile_resume": _c_profile_resume,
    "profile_list_get": _c_profile_list_get, "log_read": _c_log_read,
    "log_ack": _c_log_ack, "fault_list_get": _c_fault_list_get, "fault_ack": _c_fault_ack,
    "warnings_ack": _c_warnings_ack,
}


def type_code(msg):
    from podproto.codec import entry_for
    e = entry_for(msg["type"])
    return e[0] if e else 0


def _index(names, name):
    for i in range(len(names)):
        if names[i] == name:
            return i
    return 0

