"""The simulated air's wire protocol, defined once: what the broker
(tools/steamer_sim/air.py), its centrals (the bleak backend, tools/steamer_sim/backend.py)
and its peripherals (this folder's bluetooth.py, on the MicroPython unix port) say.

Written in the common subset of MicroPython and CPython (no annotations, no f-strings,
no dataclasses). MicroPython finds it as the sim board's own module (boards/sim is on
MICROPYPATH, steamer_dev.paths.micropython_env); CPython through steamer_sim.air, which
loads this file from steamer_dev.paths.BOARDS (it is no installed package).

Where: ENV ($STEAMER_AIR) names the air, a Unix socket's path (it has a "/", see
is_socket_path) or HOST:PORT. Framing: one JSON object a line (UTF-8, ended by "\\n"),
bytes as hex digits, every message with an "op".

Every connection first says {"op": "hello", "role": "peripheral", "name": N} or
{"op": "hello", "role": "central"}; the air answers a peripheral with {"op": "addr"} (its
address, kept across resets) and a central with {"op": "hello"}.

A peripheral sends: mtu (its preferred ATT MTU), adv (data and resp hex; data None stops
advertising), services, value (a handle's bytes), notify (conn, handle, data), enomem
(a notification its stack refused), exchange_mtu (conn: its own MTU exchange, as a GATT
client), disconnect (conn). It gets: addr, connect (conn, from a central), conn_update
(interval_ms), mtu (conn, negotiated: when an exchange completes, the central's or its
own), write (conn, handle, data), tx_done, disconnect, sim_event (a scenario event for
its board).

A central sends: scan (on), connect, read, write, subscribe, disconnect (each with a
"req" the answer repeats; an answer of op "error" says why) and sim_event (name, event).
It gets adv (addr, data, resp, rssi), the answers, notify, mtu (conn, when an exchange
completes after the connect answer), disconnected and closed.
"""
import json

ENV = "STEAMER_AIR"

ATT_MTU_MIN = 23
ATT_MTU_MAX = 517

# Connections a peripheral's stack holds at once (NimBLE and BTstack allow a few; 2 is
# enough for the firmware's use: a host's, and one it drops for it).
PERIPHERAL_CONNS = 2


def is_socket_path(addr):
    """Whether `addr` names a Unix socket (it has a "/") rather than HOST:PORT."""
    return "/" in addr


def encode(msg):
    """One message as its line on the air: compact JSON (no blanks, as the broker writes
    it), UTF-8, ended by a newline."""
    return json.dumps(msg, separators=(",", ":")).encode() + b"\n"
