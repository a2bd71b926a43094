"""The simulated `bluetooth`'s central role (boards/sim/blecentral.py, issue 13: "aioble's
examples would run on the sim module"): a MicroPython program scans, connects, discovers,
reads, writes, subscribes and disconnects through MicroPython's own API against another
MicroPython program's GATT server, both on the real unix port and the real simulated air,
under each port model. The events and their data are modbluetooth.c's
(mp_bluetooth_gap_on_scan_result, mp_bluetooth_gap_on_connected_disconnected,
mp_bluetooth_gattc_on_*); what differs by port is cited where it is asserted."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from steamer_dev.paths import micropython_env, micropython_exe
from steamer_sim.air import Air, LinkParams

_PROGRAMS = Path(__file__).parent / "programs"
_EALREADY = 114      # MP_EALREADY (py/mperrno.h), Linux's EALREADY on the unix port
_EBUSY = 16          # MP_EBUSY
_ENOTCONN = 107


def _env(board: str, air: str) -> dict[str, str]:
    env = micropython_env("sim")
    env["STEAMER_AIR"] = air
    env["STEAMER_SIM_BOARD"] = board
    return env


@pytest.mark.parametrize("board", ["esp32c3", "picow"])
def test_a_micropython_central_finds_reads_writes_and_hears_a_peripheral(tmp_path, board):
    folder = tmp_path / "air"
    folder.mkdir(mode=0o700)
    air = Air(LinkParams())
    addr = air.start_thread(path=str(folder / "air.sock"))
    env = _env(board, addr)
    per = subprocess.Popen([micropython_exe(), str(_PROGRAMS / "peripheral.py")], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert per.stdout is not None
        assert per.stdout.readline().strip() == "ready"
        run = subprocess.run([micropython_exe(), str(_PROGRAMS / "central.py")], env=env,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        out = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        per.kill()
        per.wait()
    # Scan: the advertisement (ADV_IND) and, scanning actively, the scan response; none
    # after gap_scan(None), which itself gives _IRQ_SCAN_DONE (modbluetooth_nimble.c
    # mp_bluetooth_gap_scan_stop calls mp_bluetooth_gap_on_scan_complete).
    assert out["scan"] == {"adv_type": 0, "addr_len": 6, "resp_seen": True}
    assert out["results_after_stop"] == 0
    # A connect no one answers ends when its scan duration does, as a failed connect
    # event: conn 0xFFFF, addr_type 0xFF (peripheral_gap_event_cb); a short address is
    # refused (bluetooth_ble_gap_connect: "invalid addr").
    assert out["no_one"]["conn"] == 0xFFFF and out["no_one"]["addr_type"] == 0xFF
    assert 300 <= out["no_one"]["ms"] < 2000, out["no_one"]
    assert out["short_addr"] == "invalid addr"
    assert out["connected"] is True
    # Discovery: the service with its handle range, a 16-bit UUID as 16-bit; each
    # characteristic with its end handle (the next one's declaration - 1, the last the
    # service's end), value handle and properties; the CCCD after a notifying value,
    # and the user descriptor.
    assert out["services_status"] == 0
    assert out["service"] == {"start": 1, "end": 9, "is_16_bit": True}
    assert out["chars"] == [[4, 3, 0x12, "UUID(0x2a6e)"],
                            [6, 6, 0x02, "UUID('6e400002-b5a3-f393-e0a9-e50e24dcca9e')"],
                            [9, 8, 0x0C, "UUID(0xa003)"]]
    assert out["descriptors"] == [[4, "UUID(0x2902)"], [9, "UUID(0x2901)"]]
    # One at a time: NimBLE's characteristic discovery lock (MP_EBUSY), BTstack's GATT
    # client busy with the connection's operation (GATT_CLIENT_IN_WRONG_STATE ->
    # MP_EALREADY); NimBLE queues a second read, BTstack refuses it.
    if board == "esp32c3":
        assert out["second_discovery"] == _EBUSY and out["second_read"] == "taken"
    else:
        assert out["second_discovery"] == _EALREADY and out["second_read"] == _EALREADY
    # A read is one ATT Read Request: MTU-1 bytes (22) until the central's own exchange,
    # then the whole 100.
    assert out["read_23"] == [22, 0]
    assert out["mtu"] == 247
    assert out["read_247"] == [100, True, 0]
    # Writes: the CCCD subscribes; with response a WRITE_DONE, without none; what the
    # peripheral notifies arrives as _IRQ_GATTC_NOTIFY on the value handle.
    assert out["cccd_write_done"] == [4, 0] and out["write_done"] == [8, 0]
    assert out["notified"] == [True, "cba"] and out["notified_no_response"] == "zyx"
    assert out["write_done_without_response"] == 0
    assert out["disconnected"] == [True, True]
    assert out["read_after"] == _ENOTCONN
