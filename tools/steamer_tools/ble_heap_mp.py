"""Runs on micropython (for steamer_tools.bench_ble): how much heap the firmware's BLE
layer takes on the sim board. Prints one JSON line.

    micropython -X heapsize=320k ble_heap_mp.py SCENARIO.json AIR_ADDRESS
"""
import gc
import json
import sys

import board as simboard
from fw import app as app_mod


def _free():
    gc.collect()
    return gc.mem_free()


def main():
    with open(sys.argv[1]) as f:
        scen = json.load(f)
    b = simboard.make(scen, None, 0.0, False, air=sys.argv[2], ble_name="heap-probe")
    app = app_mod.App(b)
    f0 = _free()
    from fw import ble
    f1 = _free()
    link = ble.Link(app, b.radio)
    f2 = _free()
    for _ in range(50):
        b.radio.poll(0)
        link.service()
    f3 = _free()
    print(json.dumps({"code_bytes": f0 - f1, "link_objects_bytes": f1 - f2,
                      "after_50_services_bytes": f1 - f3,
                      "note": "code is frozen into flash on a board; objects are RAM"}))
    b.close()


main()
