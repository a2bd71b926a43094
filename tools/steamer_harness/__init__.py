"""Drivers the tests and the benchmark share: nominal and fault scenarios, the dosing
limits state machine and its MicroPython side, the BLE heap probe."""
