"""The host's BLE link to steamers: the client library (client), the simulated air
(air) and the bleak backend that reaches it (simbackend)."""
