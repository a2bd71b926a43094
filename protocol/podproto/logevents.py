"""What log sync carries of each journal record, both ways: to_wire() packs a device's
journal record ({"event": name, "t": wall s or None, "t_ms": uptime ms, ...}) into a
fixed-size `log_records` entry, and from_wire() gives the host the record back as
{"seq", "kind", "payload"}, the shape the host's session store ingests.

Every entry is the same size (WIRE_BYTES), so a reply of n records has a known size and
the host can ask for exactly what fills whole PDUs. An entry is seq, t_s (0: the clock
was not set), t_ms (uptime, modulo 2**32), the event's code (its index in EVENT_NAMES)
and DATA_BYTES of data laid out by LAYOUTS: per field (name, kind, scale), kind one of
  "B" "H" "I" "b" "h" "i"  a struct int holding round(value * scale), clamped
  "s<n>"                   ASCII text in n bytes, NUL-padded, cut to fit
  "x<n>"                   a hex string (a podlet serial) as n raw bytes; all zero: none
An event missing from EVENT_NAMES travels as code 0 with its name as the data.
"""
import struct

DATA_BYTES = 32
# seq I, t_s I, t_ms I, event B, data: messages._LOG.
WIRE_BYTES = 13 + DATA_BYTES

# New events go at the end: a code, once sent, keeps its meaning.
EVENT_NAMES = (
    "unknown", "boot", "watchdog_reset", "session_started", "session_ended",
    "session_refused", "fault_latched", "fault_cleared", "fault_ack_refused",
    "podlet_accepted", "podlet_rejected", "podlet_removed", "profile_installed",
    "profile_rejected", "pairing_window", "command_rejected", "sample",
    "journal_overflow", "host_paired", "link_reset", "clock_clamped", "ledger_error",
    "not_provisioned", "record_doubt", "clock_window", "clock_confirmed",
    "warnings_acknowledged",
)

LAYOUTS = {
    "unknown": (("name", "s32", 0),),
    "boot": (("reason", "s12", 0), ("board", "s20", 0)),
    "session_started": (("podlet", "x6", 0), ("podlet_type", "B", 1), ("version", "H", 1),
                        ("target_c", "h", 100), ("limit_ul", "I", 1), ("profile", "s17", 0)),
    "session_ended": (("reason", "s20", 0), ("session_ul", "I", 1000), ("dose_s", "I", 1)),
    "session_refused": (("reason", "s32", 0),),
    "fault_latched": (("code", "s20", 0), ("sensor", "s8", 0), ("raw", "H", 1)),
    "fault_cleared": (("code", "s32", 0),),
    "fault_ack_refused": (("reason", "s28", 0), ("boiler_c", "i", 1)),
    "podlet_accepted": (("podlet", "x6", 0), ("podlet_type", "B", 1), ("left_ul", "I", 1),
                        ("expiry", "s10", 0)),
    "podlet_rejected": (("podlet", "x6", 0), ("reason", "s26", 0)),
    "podlet_removed": (("podlet", "x6", 0),),
    "profile_installed": (("podlet_type", "B", 1), ("version", "H", 1), ("name", "s29", 0)),
    "profile_rejected": (("reason", "s24", 0), ("file", "s8", 0)),
    "pairing_window": (("open_s", "H", 1),),
    "command_rejected": (("reason", "s32", 0),),
    "sample": (("state", "s10", 0), ("boiler_c", "h", 100), ("outlet_c", "h", 100),
               ("heater_pct", "h", 10), ("pump_ul_min", "I", 1000),
               ("session_ul", "I", 1000)),
    "journal_overflow": (("lost_from", "I", 1), ("lost_to", "I", 1)),
    "host_paired": (("host", "x8", 0),),
    "link_reset": (("reason", "s32", 0),),
    "clock_clamped": (("asked_s", "I", 1), ("floor_s", "I", 1)),
    "ledger_error": (("reason", "s32", 0),),
    "record_doubt": (("reason", "s32", 0),),
    "clock_window": (("open_s", "H", 1),),
    "clock_confirmed": (("asked_s", "I", 1), ("floor_s", "I", 1)),
    "warnings_acknowledged": (("podlet_type", "B", 1), ("version", "H", 1), ("host", "x8", 0)),
}

_RANGE = {"B": (0, 0xFF), "H": (0, 0xFFFF), "I": (0, 0xFFFFFFFF), "b": (-0x80, 0x7F),
          "h": (-0x8000, 0x7FFF), "i": (-0x80000000, 0x7FFFFFFF)}
_codes = None


def code_of(name):
    """The event's code; 0 for a name this table does not know."""
    global _codes
    if _codes is None:
        _codes = {}
        for i in range(len(EVENT_NAMES)):
            _codes[EVENT_NAMES[i]] = i
    return _codes.get(name, 0)


def _pack(layout, record):
    data = bytearray(DATA_BYTES)
    at = 0
    for name, kind, scale in layout:
        v = record.get(name)
        if kind[0] == "s":
            n = int(kind[1:])
            if isinstance(v, str):
                raw = v.encode()[:n]
                data[at:at + len(raw)] = raw
            at += n
        elif kind[0] == "x":
            n = int(kind[1:])
            if isinstance(v, str) and len(v) == 2 * n:
                try:
                    data[at:at + n] = bytes(int(v[2 * i:2 * i + 2], 16) for i in range(n))
                except ValueError:
                    pass
            at += n
        else:
            lo, hi = _RANGE[kind]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                struct.pack_into("<" + kind, data, at, max(lo, min(hi, int(round(v * scale)))))
            at += struct.calcsize(kind)
    return bytes(data)


def to_wire(seq, record):
    """The log_records entry of a journal record."""
    name = record.get("event")
    event = code_of(name)
    t = record.get("t")
    if not isinstance(t, int) or t < 0 or t > 0xFFFFFFFF:
        t = 0
    t_ms = record.get("t_ms")
    t_ms = t_ms & 0xFFFFFFFF if isinstance(t_ms, int) and t_ms >= 0 else 0
    if event == 0:
        data = _pack(LAYOUTS["unknown"], {"name": name if isinstance(name, str) else ""})
    else:
        data = _pack(LAYOUTS.get(name, ()), record)
    return {"seq": seq, "t_s": t, "t_ms": t_ms, "event": event, "data": data}


def from_wire(entry):
    """{"seq", "kind", "payload"} of a log_records entry: the journal record's fields as
    LAYOUTS carries them, with "t" (wall s, absent when unset) and "t_ms"."""
    event = entry["event"]
    data = entry["data"]
    name = EVENT_NAMES[event] if event < len(EVENT_NAMES) else "unknown"
    payload = {"t_ms": entry["t_ms"]}
    if entry["t_s"]:
        payload["t"] = entry["t_s"]
    at = 0
    for field, kind, scale in LAYOUTS.get(name, ()):
        if kind[0] in "sx":
            n = int(kind[1:])
            raw = bytes(data[at:at + n])
            at += n
            if kind[0] == "s":
                try:
                    text = raw.split(b"\0", 1)[0].decode()
                except UnicodeError:
                    text = "?"
                if text:
                    payload[field] = text
            elif raw != bytes(n):
                payload[field] = "".join("%02x" % b for b in raw)
        else:
            v = struct.unpack_from("<" + kind, data, at)[0]
            at += struct.calcsize(kind)
            payload[field] = v if scale == 1 else v / scale
    if event == 0:
        name = payload.pop("name", "unknown")
    return {"seq": entry["seq"], "kind": name, "payload": payload}
