"""What a `log_records` record's `event` byte and `arg` mean: the device's journal
records ({"event": name, ...}) as the 13 bytes each that log sync carries.

`event` indexes EVENT_NAMES (0: not known to this table). `arg` is one int per event,
named by ARGS: (record field, scale), e.g. a sample's outlet in milli-degrees C.
"""
EVENT_NAMES = (
    "unknown", "boot", "watchdog_reset", "session_started", "session_ended",
    "session_refused", "fault_latched", "fault_cleared", "fault_ack_refused",
    "podlet_accepted", "podlet_rejected", "podlet_removed", "profile_installed",
    "profile_rejected", "pairing_window", "command_rejected", "sample",
    "journal_overflow", "host_paired", "link_reset",
)

ARGS = {
    "sample": ("outlet_c", 1000),
    "session_started": ("podlet_type", 1),
    "session_ended": ("session_ul", 1000),
    "profile_installed": ("version", 1),
    "journal_overflow": ("lost_from", 1),
    "pairing_window": ("open_s", 1),
}

_I32 = 0x7FFFFFFF
_codes = None


def code_of(name):
    global _codes
    if _codes is None:
        _codes = {}
        for i in range(len(EVENT_NAMES)):
            _codes[EVENT_NAMES[i]] = i
    return _codes.get(name, 0)


def arg_of(record):
    """The record's one int, by ARGS, clamped to the field's i32."""
    spec = ARGS.get(record.get("event"))
    if spec is None:
        return 0
    v = record.get(spec[0])
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return 0
    v = int(round(v * spec[1]))
    return max(-_I32 - 1, min(_I32, v))


def to_wire(seq, record):
    """The log_records entry of a journal record."""
    t = record.get("t", 0)
    if not isinstance(t, int) or t < 0 or t > 0xFFFFFFFF:
        t = 0
    return {"seq": seq, "t_s": t, "event": code_of(record.get("event")), "arg": arg_of(record)}
