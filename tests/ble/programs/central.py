"""The central role of the simulated `bluetooth`, driven through MicroPython's own API
(as aioble drives it) against programs/peripheral.py on the same air. Prints one JSON
line of what it saw, for test_ble_central_role.py to judge."""
import errno
import json
import time

import bluetooth

ble = bluetooth.BLE()
ble.active(True)
events = []


def irq(event, data):
    events.append((event, tuple(bytes(d) if isinstance(d, memoryview) else d for d in data)))


ble.irq(irq)
out = {}


def wait(event, timeout_ms=3000, match=None):
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
        for i in range(len(events)):
            ev, data = events[i]
            if ev == event and (match is None or match(data)):
                events.pop(i)
                return data
        time.sleep_ms(5)
    raise OSError(errno.ETIMEDOUT)


def take(event):
    got = [d for e, d in events if e == event]
    events[:] = [(e, d) for e, d in events if e != event]
    return got


# Scan: results, a scan response when active, SCAN_DONE when stopped.
ble.gap_scan(3000, 30000, 30000, True)
found = wait(5, match=lambda d: b"per-test" in d[4])
addr_type, addr = found[0], found[1]
wait(5, match=lambda d: d[2] == 4 and d[1] == addr)       # its scan response
ble.gap_scan(None)
wait(6)
out["scan"] = {"adv_type": found[2], "addr_len": len(addr), "resp_seen": True}
time.sleep_ms(150)
take(5)
out["results_after_stop"] = len(take(5))

# A connect to no one: the failed connect's event once the scan duration ends.
t0 = time.ticks_ms()
ble.gap_connect(0, b"\x01\x02\x03\x04\x05\x06", 300)
failed = wait(8, 3000)
out["no_one"] = {"conn": failed[0], "addr_type": failed[1], "ms": time.ticks_diff(time.ticks_ms(), t0)}
try:
    ble.gap_connect(0, b"\x01\x02\x03", 300)
except ValueError as e:
    out["short_addr"] = str(e)

ble.gap_connect(addr_type, addr)
conn, _, peer = wait(7)
out["connected"] = peer == addr

ble.gattc_discover_services(conn)
svcs = []
while True:
    e, d = None, None
    t0 = time.ticks_ms()
    while not events and time.ticks_diff(time.ticks_ms(), t0) < 3000:
        time.sleep_ms(5)
    e, d = events.pop(0)
    if e == 10:
        out["services_status"] = d[1]
        break
    svcs.append(d)
svc = [s for s in svcs if s[3] == bluetooth.UUID(0x181A)][0]
out["service"] = {"start": svc[1], "end": svc[2], "is_16_bit": len(bytes(svc[3])) == 2}

ble.gattc_discover_characteristics(conn, svc[1], svc[2])
try:
    ble.gattc_discover_characteristics(conn, svc[1], svc[2])
    out["second_discovery"] = "taken"
except OSError as e:
    out["second_discovery"] = e.args[0]
chars = []
while True:
    t0 = time.ticks_ms()
    while not events and time.ticks_diff(time.ticks_ms(), t0) < 3000:
        time.sleep_ms(5)
    e, d = events.pop(0)
    if e == 12:
        break
    chars.append(d)
out["chars"] = [[c[1], c[2], c[3], str(c[4])] for c in chars]    # end, value, props, uuid
temp, long_, echo = chars[0][2], chars[1][2], chars[2][2]

ble.gattc_discover_descriptors(conn, temp + 1, chars[0][1])
cccd = wait(13)
wait(14)
ble.gattc_discover_descriptors(conn, echo + 1, chars[2][1])
user = wait(13)
wait(14)
out["descriptors"] = [[cccd[1], str(cccd[2])], [user[1], str(user[2])]]

ble.gattc_read(conn, long_)
got = wait(15)
out["read_23"] = [len(got[2]), wait(16)[2]]
ble.config(mtu=247)
ble.gattc_exchange_mtu(conn)
out["mtu"] = wait(21)[1]
ble.gattc_read(conn, long_)
got = wait(15)
out["read_247"] = [len(got[2]), got[2] == bytes(range(100)), wait(16)[2]]

# A second operation before the first is done: NimBLE queues it, BTstack refuses it.
ble.gattc_read(conn, long_)
try:
    ble.gattc_read(conn, temp)
    out["second_read"] = "taken"
except OSError as e:
    out["second_read"] = e.args[0]
wait(16, match=lambda d: d[1] == long_)
if out["second_read"] == "taken":
    wait(16, match=lambda d: d[1] == temp)
take(15)

ble.gattc_write(conn, cccd[1], b"\x01\x00", 1)
out["cccd_write_done"] = list(wait(17)[1:])
ble.gattc_write(conn, echo, b"abc", 1)
out["write_done"] = list(wait(17)[1:])
note = wait(18)
out["notified"] = [note[1] == temp, note[2].decode()]
ble.gattc_write(conn, echo, b"xyz", 0)              # without response: no WRITE_DONE
note = wait(18)
out["notified_no_response"] = note[2].decode()
time.sleep_ms(100)
out["write_done_without_response"] = len(take(17))

ble.gap_disconnect(conn)
gone = wait(8)
out["disconnected"] = [gone[0] == conn, gone[2] == addr]
try:
    ble.gattc_read(conn, long_)
    out["read_after"] = "taken"
except OSError as e:
    out["read_after"] = e.args[0]
print(json.dumps(out))
