"""The rp2 PWM slice model (boards/portsim/machine.py RP2Regs) driven through
machine.mem32 and Pin as a board's code drives it, beside a soft Pin IRQ fed the same
edges, for tests/boards/test_pwm_counter.py. Prints one JSON line. PORTSIM_PORT=rp2."""
import json

import machine
import micropython
import portclock
from checkkit import raises
import time
from machine import Pin, mem32

_PWM = 0x40050000
_EN = 0x400500A0


def csr(s):
    return _PWM + 0x14 * s


def ctr(s):
    return mem32[csr(s) + 8]


def gpio_ctrl(n):
    return 0x40014004 + 8 * n


def counting(s, top=0xFFFF, div=0x10):
    """Slice s counting rising edges of B (DIVMODE 2, EN), as PwmEdgeCounter sets it."""
    mem32[csr(s)] = 0
    mem32[csr(s) + 4] = div
    mem32[csr(s) + 0x10] = top
    mem32[csr(s) + 8] = 0
    mem32[csr(s)] = 0x21


def edges(pins, n, spacing_us=500):
    t0 = portclock.now_us()
    for p in pins:
        p.add_edges([t0 + spacing_us * (i + 1) for i in range(n)])



out = {}
enc = Pin(15, Pin.ALT, Pin.PULL_UP, alt=Pin.ALT_PWM)     # slice 7 B
out["funcsel_alt_pwm"] = mem32[gpio_ctrl(15)]
counting(7)
# The reference: a soft IRQ on GPIO13, as realboard.IrqCounter counts.
irq_pin = Pin(13, Pin.IN, Pin.PULL_UP)
n_irq = [0]


def on_edge(_p):
    n_irq[0] += 1


irq_pin.irq(handler=on_edge, trigger=Pin.IRQ_RISING)
# ---- 200 edges at 2 kHz during a 100 ms flash operation (interrupts off) -----------
edges((enc, irq_pin), 200)
portclock.busy(100000)
out["flash_op_200_edges"] = [ctr(7), n_irq[0]]
# ---- and 200 while the VM sleeps: both count every one --------------------------------
n_irq[0] = 0
edges((enc, irq_pin), 200)
time.sleep_ms(110)
out["sleeping_200_edges"] = [ctr(7), n_irq[0]]

# ---- wraps from TOP to 0; TOP and CTR are 16 bits -----------------------------------
counting(7, top=99)
edges((enc,), 250)
time.sleep_ms(130)
out["top_99_after_250"] = ctr(7)
mem32[csr(7) + 0x10] = 0x1FFFF
out["top_written_0x1ffff"] = mem32[csr(7) + 0x10]
mem32[csr(7) + 8] = 0xFFFE
edges((enc,), 3)
time.sleep_ms(5)
out["from_0xfffe_after_3"] = ctr(7)

# ---- counts nothing unless the pin is PWM's and the slice enabled in DIVMODE 2 -------
counting(7)
sio = Pin(15, Pin.IN, Pin.PULL_UP)      # the port's Pin(IN): FUNCSEL SIO
out["funcsel_in"] = mem32[gpio_ctrl(15)]
edges((sio,), 10)
time.sleep_ms(10)
out["sio_10_edges"] = ctr(7)
mem32[gpio_ctrl(15)] = 4                # FUNCSEL PWM by the register itself
edges((sio,), 10)
time.sleep_ms(10)
out["funcsel_written_10_edges"] = ctr(7)
mem32[csr(7)] = 0x20                    # DIVMODE 2, EN off
edges((sio,), 10)
time.sleep_ms(10)
out["disabled_10_edges"] = ctr(7)
mem32[_EN] = 1 << 7                     # EN through the alias register
out["en_alias"] = [mem32[_EN], mem32[csr(7)]]
edges((sio,), 10)
time.sleep_ms(10)
out["enabled_by_alias_10_edges"] = ctr(7)
# An even pin is an A channel: no input.
even = Pin(14, Pin.ALT, alt=Pin.ALT_PWM)
edges((even,), 10)
time.sleep_ms(10)
out["even_pin_10_edges"] = ctr(7)
# Through the divider: DIV 2.0 counts every other edge.
counting(7, div=0x20)
edges((sio,), 10)
time.sleep_ms(10)
out["div_2_10_edges"] = ctr(7)
# A free-running slice's CTR is not modelled: reading it raises.
mem32[csr(7)] = 0x01
out["ctr_free_running"] = raises(ctr, 7)

# ---- a PWM output writes its slice (ports/rp2/machine_pwm.c) -----------------------------
step = machine.PWM(Pin(5), freq=10000, duty_u16=32768)     # slice 2 B
out["pwm_10khz_div_top_en"] = [mem32[csr(2) + 4], mem32[csr(2) + 0x10], mem32[csr(2)] & 1,
                               mem32[gpio_ctrl(5)]]
step.freq(8)
out["pwm_8hz_div_top"] = [mem32[csr(2) + 4], mem32[csr(2) + 0x10]]
step.deinit()
out["pwm_deinit_en"] = mem32[csr(2)] & 1

# ---- edges and reads allocate nothing (the control step reads under heap_lock) ----------
counting(7)
res = [0, 0]


def locked(res):
    for _ in range(20):
        enc.edge(1)
    res[0] = ctr(7)
    res[1] = 1


micropython.heap_lock()
try:
    locked(res)
except MemoryError:
    pass
micropython.heap_unlock()
out["locked_20_edges"] = res
print(json.dumps(out))
