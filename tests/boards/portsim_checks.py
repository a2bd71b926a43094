"""The port models (boards/portsim) on their own, on the unix port, for
tests/boards/test_portsim.py: each check drives one model the way a board's code does
and prints what the port's C source says it must do, as one JSON line. $PORTSIM_PORT
picks the port."""
import json

import machine
import micropython
import portclock
from checkkit import raises
import time
from timedflash import TimedFlash

out = {"port": machine.PORT}



# ---- PWM: the slowest rate each port makes -------------------------------------------
pwm = machine.PWM(machine.Pin(5), freq=1000, duty_u16=0)
out["pwm_freq_raises"] = {str(hz): raises(pwm.freq, hz) for hz in (7, 8, 9, 10, 20000)}

# Under heap_lock (the control step) a raise is a MemoryError.
res = [None]


def locked(f, arg):
    micropython.heap_lock()
    try:
        f(arg)
        res[0] = "ok"
    except MemoryError:
        res[0] = "MemoryError"
    except Exception:  # noqa: BLE001
        res[0] = "other"
    micropython.heap_unlock()
    return res[0]


out["pwm_9hz_locked"] = locked(pwm.freq, 9)

# Steps put out: 1000 Hz at 50 % for 100 ms is 100 steps.
pwm.freq(1000)
pwm.duty_u16(32768)
time.sleep_ms(100)
pwm.duty_u16(0)
out["pwm_steps_100ms_1khz"] = pwm.steps

# ---- ADC: transfer functions --------------------------------------------------------
if machine.ESP32:
    adc = machine.ADC(machine.Pin(0), atten=machine.ADC.ATTN_11DB)
else:
    adc = machine.ADC(machine.Pin(26))
levels = {}
for uv in (1000000, 1650000, 2400000, 3000000):
    adc.uv = uv
    levels[str(uv)] = [adc.read_u16(), adc.read_uv() if machine.ESP32 else None]
out["adc"] = levels
out["adc_has_read_uv"] = hasattr(adc, "read_uv")
out["c3_gain_ppm"] = machine.C3_GAIN_PPM

# ---- the scheduler: 8 deep, callbacks between bytecodes -----------------------------------
pin = machine.Pin(3, machine.Pin.IN, machine.Pin.PULL_UP)
count = [0]


def on_edge(p):
    count[0] += 1


pin.irq(handler=on_edge, trigger=machine.Pin.IRQ_RISING)
t0 = portclock.now_us()
# 12 edges 1 ms apart while a native call holds the VM for 20 ms: 8 queued, 4 lost.
pin.add_edges([t0 + 1000 * (i + 1) for i in range(12)])
portclock.advance(20000)
lost0 = portclock.NOW[3]
portclock.run_pending()
out["held_vm_12_edges"] = [count[0], lost0]
# 12 edges during a 20 ms flash operation: they collapse into one.
count[0] = 0
t0 = portclock.now_us()
pin.add_edges([t0 + 1000 * (i + 1) for i in range(12)])
portclock.busy(20000)
out["flash_op_12_edges"] = [count[0], portclock.NOW[4]]
# 12 edges 1 ms apart while the VM sleeps: every one counted.
count[0] = 0
t0 = portclock.now_us()
pin.add_edges([t0 + 1000 * (i + 1) for i in range(12)])
time.sleep_ms(20)
out["sleeping_12_edges"] = count[0]

# ---- a one-shot timer: soft, late by a flash operation ----------------------------------
fired = [0]


def on_timer(t):
    fired[0] = portclock.now_us()


tm = machine.Timer(0 if machine.ESP32 else -1)
start = portclock.now_us()
tm.init(mode=machine.Timer.ONE_SHOT, period=100, callback=on_timer)
time.sleep_ms(90)
portclock.busy(45000)       # an erase from 90 ms to 135 ms
out["timer_fired_after_ms"] = (fired[0] - start) // 1000
out["timer_ids"] = {str(i): raises(machine.Timer, i) for i in (-1, 0, 2)}

# ---- the watchdog: no way to stop it ------------------------------------------------------
w = machine.WDT(timeout=1000)
out["wdt_has_deinit"] = hasattr(w, "deinit") or hasattr(w, "stop")
out["wdt_9s"] = raises(machine.WDT, 0, 9000)
time.sleep_ms(900)
out["wdt_bitten_900ms"] = machine.watchdog_bitten(portclock.now_us())
portclock.busy(200000)
out["wdt_bitten_1100ms"] = machine.watchdog_bitten(portclock.now_us())

# ---- the flash: an erase and 16 page programs for a 4 KiB block -----------------------------
f = TimedFlash("checks-flash.img", 8, 4096)
t0 = portclock.now_us()
f.writeblocks(1, bytearray(4096))
out["flash_4k_write_us"] = portclock.now_us() - t0

# ---- the RTC across resets: what each port's boot sets it to --------------------------
time.set_port_epoch(2000 if machine.ESP32 else 1970)
rtc = machine.RTC()
rtc.datetime((2026, 3, 1, 0, 12, 0, 0, 0))
years = {}
machine.reset_state(machine.SOFT_RESET)
years["soft"] = time.gmtime()[0]
machine.chip_reset(machine.WDT_RESET)
years["wdt"] = time.gmtime()[0]
rtc.datetime((2026, 3, 1, 0, 12, 0, 0, 0))
machine.power_on()
years["power_on"] = time.gmtime()[:6]
years["power_on_s"] = time.time()
out["rtc_year_after"] = years
print(json.dumps(out))
