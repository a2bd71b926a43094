"""The message table: every message's type code, name and body fields, in order.

A field is (name, kind). Kinds:
  "B" "H" "I" "b" "h" "i"  little-endian ints as `struct` packs them
  "?"                      0 or 1 in one byte
  "s"                      ASCII printable text (0x20..0x7e), u8 length first
  "y"                      bytes, u8 length first
  "Y"                      bytes to the end of the body (last field only)
  "x16" "x32"              exactly that many bytes
  ("L", fields)            a list of records: u8 count, then each record's fields
Temperatures are milli-degrees C (_mc), volumes microlitres (_ul), times as named.
Directions: H>D host to device (Command characteristic), D>H device to host (Event),
I the Info characteristic, S the State characteristic.
"""
from podproto.mpconst import const

# Frame flags.
FLAG_FROM_DEVICE = const(0x01)   # set on every frame the device sends
FLAG_ACK_REQ = const(0x02)       # the sender wants an `ack` (or `error`) for this frame
FLAG_MAC = const(0x04)           # a command counter and MAC follow the body (codec)
FLAGS_KNOWN = const(0x07)

# value and limit in the record's unit (names.UNIT_NAMES[unit]; names.FAULT_UNITS by code).
_FAULT = (("code", "B"), ("sensor", "B"), ("raw", "H"), ("value", "i"), ("limit", "i"),
          ("unit", "B"), ("uptime_s", "I"))
# A journal record as podproto.logevents packs it (logevents.WIRE_BYTES in all).
_LOG = (("seq", "I"), ("t_s", "I"), ("t_ms", "I"), ("event", "B"), ("data", "x32"))
# sha256: of the installed profile's bytes, whole (a host tells its own file from another
# signed with the same type, version and name). 60 bytes an entry at most: a list of 36
# still fits the 128 PDUs of a frame at ATT MTU 23 (one profile per podlet type).
_PROFILE_ID = (("podlet_type", "B"), ("version", "H"), ("name", "s"), ("sha256", "x32"))

# (type, name, fields); type codes are grouped by topic in 16s.
TABLE = (
    # Link and capabilities.
    (0x01, "hello", (("proto", "B"), ("caps", "H"), ("max_pdu", "H"), ("app", "s"))),   # H>D
    (0x02, "info", (("proto", "B"), ("caps", "H"), ("max_frame", "H"), ("max_pdu", "H"),
                    ("rx_credits", "B"), ("log_first", "I"), ("log_next", "I"),
                    ("fw_version", "s"), ("journal_id", "x8"))),                        # I, D>H
    (0x03, "credit", ()),                          # D>H: carries credits in its header only
    (0x04, "ack", (("ref_type", "B"), ("ref_id", "B"))),                               # both
    (0x05, "error", (("code", "B"), ("ref_type", "B"), ("ref_id", "B"),
                     ("detail", "s"))),                                                 # both
    # Pairing and authentication.
    (0x10, "pair_request", (("host_pub", "x32"), ("host_nonce", "x16"))),               # H>D
    (0x11, "pair_challenge", (("dev_pub", "x32"), ("dev_nonce", "x16"))),               # D>H
    (0x12, "auth_challenge", (("nonce", "x16"),)),                                     # D>H
    (0x13, "auth_response", (("host_id", "y"), ("nonce", "x16"), ("mac", "x32"))),     # H>D
    (0x14, "key_confirm", (("mac", "x32"),)),                                          # D>H
    # Status, sessions, clock.
    (0x20, "status_get", ()),                                                          # H>D
    (0x21, "status", (("state", "B"), ("fault", "B"), ("boiler_mc", "i"),
                      ("outlet_mc", "i"), ("heater_pct", "B"), ("pump_ul_min", "H"),
                      ("session_ul", "I"), ("session_s", "H"), ("podlet_type", "B"),
                      ("clock_s", "I"), ("limit_ul", "I"), ("limit_s", "H"),
                      # names.PODLET_STATES, names.PODLET_REASONS
                      ("podlet_state", "B"), ("podlet_reason", "B"))),                  # S, D>H
    (0x22, "session_start", (("podlet_type", "B"),)),                                  # H>D
    (0x23, "session_stop", ()),                                                        # H>D
    (0x24, "set_clock", (("epoch_s", "I"),)),                                          # H>D
    # Profile transfer.
    (0x30, "profile_begin", (("size", "I"), ("sha256", "x32"))),                       # H>D
    (0x31, "profile_chunk", (("offset", "I"), ("data", "Y"))),                         # H>D
    (0x32, "profile_commit", ()),                                                      # H>D
    (0x33, "profile_abort", ()),                                                       # H>D
    (0x34, "profile_resume", ()),                                                      # H>D
    (0x35, "profile_offset", (("size", "I"), ("offset", "I"))),                        # D>H
    (0x36, "profile_list_get", ()),                                                    # H>D
    (0x37, "profile_list", (("profiles", ("L", _PROFILE_ID)),)),                       # D>H
    # The user read the warnings of the installed profile of this type and version
    # (podproto.profile format 2) and acknowledged them: its sessions may start.
    (0x38, "warnings_ack", (("podlet_type", "B"), ("version", "H"))),                  # H>D
    # Log and faults.
    # journal_id: the journal (Info's) the host syncs; another's read or ack is refused.
    # Not in log_records: a reply fills whole PDUs (958 of 964 bytes at ATT MTU 247).
    (0x40, "log_read", (("from_seq", "I"), ("max_records", "B"), ("journal_id", "x8"))),  # H>D
    (0x41, "log_records", (("records", ("L", _LOG)),)),                                # D>H
    (0x42, "log_ack", (("seq", "I"), ("journal_id", "x8"))),                           # H>D
    (0x50, "fault_list_get", ()),                                                      # H>D
    (0x51, "fault_list", (("faults", ("L", _FAULT)),)),                                # D>H
    (0x52, "fault_ack", (("code", "B"),)),                                             # H>D
)

# Error codes carried by `error`.
ERR_NAMES = ("ok", "malformed", "unknown_type", "bad_state", "busy", "auth_required",
             "auth_failed", "no_credits", "too_large", "bad_offset", "bad_hash",
             "bad_signature", "envelope", "stale_version", "not_found", "internal")
