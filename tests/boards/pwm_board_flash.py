"""The Pico W board's encoder count through a long flash write, for
tests/boards/test_pwm_counter.py: boards/picow/board.py with boards/common on the rp2
port models, its data folder a littlefs on a timed flash (rp2.Flash(), mounted through
realboard.PumpSafeFlash by the board), edges coming on the encoder pin at 400 Hz while
a 16 KiB file is written. A soft Pin IRQ (realboard.IrqCounter) on a spare pin gets the
same edges. Prints one JSON line per part. $BOARD_PY: the board's source (its pin table);
PORTSIM_PORT=rp2, PORTSIM_FLASH=worst for 400 ms erases."""
import json
import os
import time
import vfs

import machine
import portclock
import timedflash
from pintable import pin_table
from timedflash import TimedFlash

import board as board_mod
import realboard

_EDGES = 1600
_SPACING_US = 2500      # 400 Hz: the pump's fastest encoder rate is about that
_SPARE_PIN = 13



PIN = pin_table(os.getenv("BOARD_PY"))
time.set_port_epoch(1970)
flash = TimedFlash("pwm-board.flash", 64, 4096)
timedflash.DEVICE[0] = flash
vfs.VfsLfs2.mkfs(flash, progsize=256)
vfs.mount(vfs.VfsLfs2(flash, progsize=256), realboard.Board.data_dir)
b = board_mod.make()
ref = realboard.IrqCounter(_SPARE_PIN)

out = {"may_miss_edges": b.pump.MAY_MISS_EDGES}
t0 = portclock.now_us()
times = [t0 + _SPACING_US * (i + 1) for i in range(_EDGES)]
machine.PINS[PIN["PUMP_ENCODER"]].add_edges(times)
machine.PINS[_SPARE_PIN].add_edges(list(times))
pulses0 = b.pump.pulses()
ref0 = ref.count()
busy0 = flash.busy_us
with open(realboard.Board.data_dir + "/big.bin", "wb") as f:
    for _ in range(4):
        f.write(bytearray(4096))
out["flash_busy_ms"] = (flash.busy_us - busy0) // 1000
out["flash_longest_op_ms"] = flash.longest_us // 1000
out["write_ms"] = (portclock.now_us() - t0) // 1000
time.sleep_ms(_EDGES * _SPACING_US // 1000 + 10)       # the rest of the edges come
out["edges"] = _EDGES
out["pulses"] = (b.pump.pulses() - pulses0) & 0xFFFFFF
out["irq_counted"] = ref.count() - ref0
print(json.dumps(out))

# ---- the 16-bit CTR's wrap and the 24-bit count's, in one run of edges ------------------
enc_no = PIN["PUMP_ENCODER"]
ctr_addr = 0x40050000 + 0x14 * ((enc_no >> 1) & 7) + 8
machine.mem32[ctr_addr] = 0xFFF0
b.pump.encoder.start_at((1 << 24) - 100)
t0 = portclock.now_us()
machine.PINS[enc_no].add_edges([t0 + _SPACING_US * (i + 1) for i in range(_EDGES)])
portclock.busy(_EDGES * _SPACING_US + 10)
out["wrapped"] = [b.pump.pulses(), machine.mem32[ctr_addr]]
print(json.dumps(out))
