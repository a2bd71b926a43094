"""A peripheral of its own on the simulated `bluetooth` (no firmware): one service for
test_ble_central_role.py's central to find. A write to Echo is notified back reversed on
Temp. Prints "ready" once advertising; runs until killed."""
import time

import bluetooth

_SVC = bluetooth.UUID(0x181A)
_TEMP = (bluetooth.UUID(0x2A6E), bluetooth.FLAG_READ | bluetooth.FLAG_NOTIFY)
_LONG = (bluetooth.UUID("6e400002-b5a3-f393-e0a9-e50e24dcca9e"), bluetooth.FLAG_READ)
_ECHO = (bluetooth.UUID(0xA003), bluetooth.FLAG_WRITE | bluetooth.FLAG_WRITE_NO_RESPONSE,
         ((bluetooth.UUID(0x2901), bluetooth.FLAG_READ),))

ble = bluetooth.BLE()
ble.active(True)
ble.config(mtu=247)
((h_temp, h_long, h_echo, h_desc),) = ble.gatts_register_services(((_SVC, (_TEMP, _LONG, _ECHO)),))
ble.gatts_write(h_temp, b"\x10\x09")
ble.gatts_write(h_long, bytes(range(100)))
ble.gatts_write(h_desc, b"echo")
conns = []
echoes = []


def irq(event, data):
    if event == 1:
        conns.append(data[0])
    elif event == 2 and data[0] in conns:
        conns.remove(data[0])
    elif event == 3 and data[1] == h_echo:
        echoes.append(data[0])


ble.irq(irq)
name = b"per-test"
adv = b"\x02\x01\x06" + bytes((len(name) + 1, 0x09)) + name + b"\x03\x03\x1a\x18"
ble.gap_advertise(100000, adv, resp_data=b"\x05\x09resp")
print("ready")
while True:
    while echoes:
        conn = echoes.pop(0)
        ble.gatts_notify(conn, h_temp, bytes(reversed(ble.gatts_read(h_echo))))
    time.sleep_ms(10)
