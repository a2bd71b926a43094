"""Protocol figures for `steamer dev bench`: podproto's speed on both runtimes and the
device receive path's allocation per PDU.

    from steamer_tools import bench_protocol; print(bench_protocol.run())

Measures, on CPython and on the MicroPython unix port at the boards' heap (BOARD_HEAP):
encode and decode of a typical frame (a `status`, as the State characteristic sends at
1-2 Hz), a whole 4 KB profile transfer (begin, chunks, commit: encode and fragment on
the sending side; reassemble, decode and hash on the receiving side), Ed25519 verify of
a signed profile, and bytes allocated per PDU by Reassembler.feed (goal: 0). The unix
port runs on this PC, so its times are far below a board's; compare them with each other.

`ed25519_slices`: the verification as the firmware runs it, a slice per period
(podproto.ed25519.verify_steps, at most SLICE_MULS field multiplications a slice), of a
signed profile with the longest name (two SHA-512 blocks) and of a podlet image (one):
slices, units, and each slice's time on the unix port (the least of SLICE_RUNS runs,
slice by slice; gc included, as on a board).
`pairing_slices`: the device's side of pairing as the firmware runs it, in the same
slices (podproto.pairing.respond_steps: two X25519 ladders and the key derivation).
`ed25519_board_estimate` scales those times to the boards by a big-int benchmark run on
both: the time to compute 1,000 digits of pi with big ints (PI_DIGITS below), published
for MicroPython v1.23.0 on an ESP32-C3 at 160 MHz (537 ms) and an RP2040 at 125 MHz
(868 ms) by github.com/shaoziyang/micropython_benchmarks ("Pi Calculation 1000 bits"),
and measured here on the same unix port as the slices. The unix port of this venv keeps
big ints in 16-bit digits as the 32-bit boards do, so the ratio compares like with
like; it is an estimate all the same (other MicroPython version, other cache and
memory), not a measurement on a board.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import time
from pathlib import Path

import podproto
from podproto import link, profile, signing
from steamer_dev.paths import BOARD_HEAP, micropython_env, micropython_exe

PROFILE_BYTES = 4096
MAX_PDU = 244              # a BLE 4.2+ link with data length extension
CHUNK_BYTES = 960          # profile_chunk data per frame: fits link.MAX_FRAME
_KEY = bytes(range(32))    # a bench key, not the manufacturer's

STATUS = {"type": "status", "id": 1, "flags": 1, "credits": 2, "state": 4, "fault": 0,
          "boiler_mc": 99850, "outlet_mc": 45120, "heater_pct": 62, "pump_ul_min": 300,
          "session_ul": 1250, "session_s": 250, "podlet_type": 3, "clock_s": 1_790_000_000,
          "limit_ul": 2500, "limit_s": 600, "podlet_state": 2, "podlet_reason": 0}
PROFILE = {"podlet_type": 3, "version": 1, "name": "vitamin-c", "outlet_target_c": 45.0,
           "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,
           "max_day_ul": 5000, "min_interval_s": 14400}
# The longest name: the most SHA-512 blocks (2) a profile's signature check hashes.
PROFILE_LONG = dict(PROFILE, name="vitamin-c-and-hyaluronic")
PODLET = {"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
          "expiry": "2030-01-01", "lot": "B1"}
SLICE_RUNS = 5
# Published "Pi Calculation 1000 bits" times (ms), MicroPython v1.23.0, see the doc.
PI_BOARD_MS = {"esp32c3_160mhz": 537.0, "rp2040_125mhz": 868.0}


def _transfer_messages(blob):
    msgs = [{"type": "profile_begin", "id": 0, "size": len(blob),
             "sha256": hashlib.sha256(blob).digest()}]
    for off in range(0, len(blob), CHUNK_BYTES):
        msgs.append({"type": "profile_chunk", "id": len(msgs), "offset": off,
                     "data": blob[off:off + CHUNK_BYTES]})
    msgs.append({"type": "profile_commit", "id": len(msgs)})
    return msgs


def _per_call_us(fn, min_s=0.3):
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_s:
            return round(dt / n * 1e6, 2)


def cpython_figures(blob, signed):
    frame = podproto.encode(STATUS)
    msgs = _transfer_messages(blob)
    pdus = []

    def send():
        f = link.Fragmenter(MAX_PDU)
        pdus[:] = [p for m in msgs for p in f.split(podproto.encode(m))]

    def receive():
        r = link.Reassembler()
        data = bytearray(len(blob))
        for pdu in pdus:
            n = r.feed(pdu)
            if n:
                m = r.message(n)
                if m["type"] == "profile_chunk":
                    data[m["offset"]:m["offset"] + len(m["data"])] = m["data"]
        assert hashlib.sha256(data).digest() == msgs[0]["sha256"]

    pub = signing.public_key(_KEY)
    return {
        "frame_encode_us": _per_call_us(lambda: podproto.encode(STATUS)),
        "frame_decode_us": _per_call_us(lambda: podproto.decode(frame)),
        "profile_4k_send_us": _per_call_us(send),
        "profile_4k_receive_us": _per_call_us(receive),
        "ed25519_verify_ms": round(_per_call_us(lambda: profile.verify(pub, signed)) / 1000, 3),
    }, len(frame), len(msgs), len(pdus)


# Runs on the unix port: same work as cpython_figures, timed with ticks_us.
_MP_SCRIPT = r"""
import binascii, gc, hashlib, json, micropython, sys, time
import podproto
from podproto import link, profile
args = json.loads(open(sys.argv[1]).read())
STATUS = args["status"]
blob = binascii.unhexlify(args["blob"])
signed = binascii.unhexlify(args["signed"])
pub = binascii.unhexlify(args["pub"])
CHUNK = args["chunk"]
MAX_PDU = args["max_pdu"]

def per_call_us(fn, min_us=300000):
    n = 0
    t0 = time.ticks_us()
    while True:
        fn()
        n += 1
        dt = time.ticks_diff(time.ticks_us(), t0)
        if dt >= min_us:
            return dt / n

msgs = [{"type": "profile_begin", "id": 0, "size": len(blob),
         "sha256": hashlib.sha256(blob).digest()}]
for off in range(0, len(blob), CHUNK):
    msgs.append({"type": "profile_chunk", "id": len(msgs), "offset": off,
                 "data": blob[off:off + CHUNK]})
msgs.append({"type": "profile_commit", "id": len(msgs)})
pdus = []

def send():
    f = link.Fragmenter(MAX_PDU)
    del pdus[:]
    for m in msgs:
        pdus.extend(f.split(podproto.encode(m)))

r = link.Reassembler()
data = bytearray(len(blob))
mv = memoryview(data)

def receive():
    r.reset()
    for pdu in pdus:
        n = r.feed(pdu)
        if n:
            m = r.message(n)
            if m["type"] == "profile_chunk":
                d = m["data"]
                mv[m["offset"]:m["offset"] + len(d)] = d
    assert hashlib.sha256(data).digest() == msgs[0]["sha256"]

frame = podproto.encode(STATUS)
out = {}
out["frame_encode_us"] = per_call_us(lambda: podproto.encode(STATUS))
out["frame_decode_us"] = per_call_us(lambda: podproto.decode(frame))
out["profile_4k_send_us"] = per_call_us(send)
out["profile_4k_receive_us"] = per_call_us(receive)
out["ed25519_verify_ms"] = per_call_us(lambda: profile.verify(pub, signed), 1000000) / 1000

# The verification as the firmware runs it, a slice at a time.
from podproto import ed25519, podlet
image = binascii.unhexlify(args["podlet"])

def slice_times(msg, sig, runs, make=None):
    best = None
    for _ in range(runs):
        steps = make() if make else ed25519.verify_steps(pub, msg, sig)
        times = []
        while True:
            t0 = time.ticks_us()
            try:
                next(steps)
                done = None
            except StopIteration as stop:
                done = stop
            times.append(time.ticks_diff(time.ticks_us(), t0))
            if done is not None:
                break
        assert done.value
        best = times if best is None else [min(a, b) for a, b in zip(best, times)]
    return best

def figures(log, times):
    srt = sorted(times)
    return {"slices": len(log), "units": sum(log), "units_max": max(log),
            "slice_us_max": max(times), "slice_us_median": srt[len(srt) // 2],
            "verify_us": sum(times)}

def sliced(msg, sig):
    log = []
    assert ed25519.run(ed25519.verify_steps(pub, msg, sig, log=log))
    return figures(log, slice_times(msg, sig, args["runs"]))

_, pod_signed, pod_sig = podlet.decode(image)
long = binascii.unhexlify(args["signed_long"])
n = len(long)
out["ed25519_slices"] = {
    "slice_muls": ed25519.SLICE_MULS,
    "profile": sliced(long[:n - 64], long[n - 64:]),
    "podlet": sliced(pod_signed, pod_sig)}

# Pairing, the device's side, with a host key made the same way.
from podproto import pairing
host_pub = pairing.keypair()[1]

def respond():
    return pairing.respond_steps(host_pub, bytes(16), bytes(16))

log = []
ed25519.run(pairing.respond_steps(host_pub, bytes(16), bytes(16), log=log))
out["pairing_slices"] = figures(log, slice_times(None, None, args["runs"], respond))


# Receive path allocation: bytes per PDU fed (gc off, so nothing is reclaimed meanwhile),
# and how many feeds fail under heap_lock (any allocation there raises MemoryError).
def rx_alloc(pdu_size, frames):
    f = link.Fragmenter(pdu_size)
    stream = []
    for fr in frames:
        stream.extend(f.split(fr))
    rr = link.Reassembler(max_pdu=pdu_size)
    feed = rr.feed
    count = len(stream)
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    i = 0
    while i < count:
        feed(stream[i])
        i += 1
    used = gc.mem_alloc() - a0
    gc.enable()
    rr.reset()
    locked_fail = 0
    msg_bytes = 0
    for pdu in stream:
        micropython.heap_lock()
        try:
            n = feed(pdu)
        except MemoryError:
            n = 0
            locked_fail += 1
        micropython.heap_unlock()
        if n:
            gc.collect()
            gc.disable()
            a0 = gc.mem_alloc()
            rr.message(n)
            msg_bytes += gc.mem_alloc() - a0
            gc.enable()
    return count, used, locked_fail, msg_bytes

frames = [podproto.encode(m) for m in msgs]
for size in (20, MAX_PDU):
    count, used, fails, msg_bytes = rx_alloc(size, frames)
    out["rx_pdus_%d" % size] = count
    out["rx_alloc_bytes_per_pdu_%d" % size] = used / count
    out["rx_heap_lock_failures_%d" % size] = fails
    out["decode_alloc_bytes_per_transfer_message_%d" % size] = msg_bytes // len(frames)
status_frame = podproto.encode(STATUS)
gc.collect(); gc.disable(); a0 = gc.mem_alloc()
podproto.decode(status_frame)
out["decode_alloc_bytes_status"] = gc.mem_alloc() - a0
gc.enable()
print(json.dumps(out))
"""


# The big-int benchmark the board estimate scales by, alone in a fresh interpreter at the
# boards' heap, as it ran on the boards.
_PI_SCRIPT = r"""
import gc, sys, time

def pi_digits(ndigits):
    # pi = 6 arcsin(1/2) summed in fixed point, 8 guard digits: big ints multiplied and
    # divided by small ones, as the published board benchmark does.
    one = 10 ** (ndigits + 8)
    term = total = 3 * one
    n, dn, d, dd = 1, 0, 0, 24
    while term > 1:
        n, dn, d, dd = n + dn, dn + 8, d + dd, dd + 32
        term = term * n // d
        total += term
    return total // 10 ** 8

assert str(pi_digits(1000)).startswith("31415926535897932384")
best = None
for _ in range(30):
    gc.collect()
    t0 = time.ticks_us()
    pi_digits(int(sys.argv[1]))
    dt = time.ticks_diff(time.ticks_us(), t0)
    best = dt if best is None else min(best, dt)
print(best)
"""


def pi_us(digits=1000):
    """Least time of 30 runs of the pi benchmark on the unix port (us), or None."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "pi_mp.py"
        script.write_text(_PI_SCRIPT)
        proc = subprocess.run([micropython_exe(), "-X", "heapsize=" + BOARD_HEAP, str(script),
                               str(digits)], capture_output=True, text=True,
                              env=micropython_env(), timeout=120)
    return int(proc.stdout) if proc.returncode == 0 else None


def micropython_figures(blob, signed):
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench_mp.py"
        script.write_text(_MP_SCRIPT)
        args = Path(tmp) / "args.json"
        args.write_text(json.dumps({"status": STATUS, "blob": blob.hex(), "signed": signed.hex(),
                                    "pub": signing.public_key(_KEY).hex(),
                                    "podlet": signing.sign_podlet(_KEY, PODLET).hex(),
                                    "signed_long": signing.sign_profile(_KEY, PROFILE_LONG).hex(),
                                    "runs": SLICE_RUNS,
                                    "chunk": CHUNK_BYTES, "max_pdu": MAX_PDU}))
        proc = subprocess.run([micropython_exe(), "-X", "heapsize=" + BOARD_HEAP, str(script),
                               str(args)], capture_output=True, text=True,
                              env=micropython_env(), timeout=120)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["exit %d" % proc.returncode]}
    out = json.loads(proc.stdout)
    out["pi_1000_digits_us"] = pi_us()
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def board_estimate(mp: dict) -> dict:
    """The slices' times scaled to each board by the pi benchmark (see the doc): an
    estimate, in ms (for pairing, `verify_ms` is the whole of the device's side)."""
    sl = mp.get("ed25519_slices")
    pi_us = mp.get("pi_1000_digits_us")
    if not sl or not pi_us:
        return {}
    out = {}
    for board, pi_ms in PI_BOARD_MS.items():
        factor = pi_ms * 1000 / pi_us
        est = {"factor": round(factor, 1)}
        for what, s in (("profile", sl["profile"]), ("podlet", sl["podlet"]),
                        ("pairing", mp.get("pairing_slices"))):
            if s:
                est[what] = {"slice_ms_max": round(s["slice_us_max"] * factor / 1000, 1),
                             "slice_ms_median": round(s["slice_us_median"] * factor / 1000, 1),
                             "verify_ms": round(s["verify_us"] * factor / 1000),
                             "periods": s["slices"]}
        out[board] = est
    return out


def run() -> dict:
    """The protocol's benchmark figures (a JSON-able dict); takes about 5-10 s."""
    blob = bytes((i * 7 + 3) & 0xFF for i in range(PROFILE_BYTES))
    signed = signing.sign_profile(_KEY, PROFILE)
    cpy, frame_len, frames, pdus = cpython_figures(blob, signed)
    mp = micropython_figures(blob, signed)
    return {
        "frame": {"type": "status", "bytes": frame_len},
        "profile_transfer": {"bytes": PROFILE_BYTES, "frames": frames, "pdus": pdus,
                             "max_pdu": MAX_PDU, "chunk_bytes": CHUNK_BYTES},
        "cpython": cpy,
        "micropython": dict(mp, heap=BOARD_HEAP),
        "ed25519_board_estimate": board_estimate(mp),
        "goal_rx_alloc_bytes_per_pdu": 0,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
