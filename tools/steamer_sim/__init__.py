"""The simulator's host side: the scenario format, the driver that runs boards/sim on the
MicroPython unix port, the development keys, the simulated air and its bleak backend
(`steamer sim`)."""
