"""The steamer's GATT layout: one custom service, four characteristics, plus DIS.

UUIDs are strings so that both `bluetooth.UUID(...)` (device) and bleak (host) take
them as they are. Every value that crosses a characteristic is a podproto frame
(Info, State) or a PDU of one (Command, Event); see README.md.
"""
from podproto.mpconst import const

SERVICE_UUID = "5e7a0001-9c1d-4b6e-a3f2-7d1c0b5e0a11"
# Read: an `info` frame (protocol version, capabilities, largest frame, receive
# credits, log sequence range, firmware version).
INFO_UUID = "5e7a0002-9c1d-4b6e-a3f2-7d1c0b5e0a11"
# Write and write-without-response, host to device: PDUs of command frames.
COMMAND_UUID = "5e7a0003-9c1d-4b6e-a3f2-7d1c0b5e0a11"
# Notify, device to host: PDUs of response and event frames.
EVENT_UUID = "5e7a0004-9c1d-4b6e-a3f2-7d1c0b5e0a11"
# Read and notify at 1-2 Hz: a whole `status` frame (not a PDU: no PDU header). It is
# notified only when it fits one notification, at ATT MTU STATE_NOTIFY_MIN_MTU or more;
# below that the host reads it (steamer.client.Steamer.status_stream polls).
STATE_UUID = "5e7a0005-9c1d-4b6e-a3f2-7d1c0b5e0a11"
STATE_FRAME_BYTES = const(44)
STATE_NOTIFY_MIN_MTU = const(47)      # STATE_FRAME_BYTES + the ATT header's 3

# Characteristic property bits, as the Bluetooth Core spec numbers them.
FLAG_READ = const(0x02)
FLAG_WRITE_NO_RESPONSE = const(0x04)
FLAG_WRITE = const(0x08)
FLAG_NOTIFY = const(0x10)

CHARACTERISTICS = (
    ("info", INFO_UUID, FLAG_READ),
    ("command", COMMAND_UUID, FLAG_WRITE | FLAG_WRITE_NO_RESPONSE),
    ("event", EVENT_UUID, FLAG_NOTIFY),
    ("state", STATE_UUID, FLAG_READ | FLAG_NOTIFY),
)

# Device Information Service (Bluetooth SIG assigned numbers) and what we put there.
DIS_UUID = "0000180a-0000-1000-8000-00805f9b34fb"
DIS_FIELDS = (
    ("manufacturer_name", "00002a29-0000-1000-8000-00805f9b34fb"),
    ("model_number", "00002a24-0000-1000-8000-00805f9b34fb"),
    ("serial_number", "00002a25-0000-1000-8000-00805f9b34fb"),
    ("hardware_revision", "00002a27-0000-1000-8000-00805f9b34fb"),
    ("firmware_revision", "00002a26-0000-1000-8000-00805f9b34fb"),
)

# Capability bits carried in hello and info.
CAP_PROFILES = const(0x0001)
CAP_LOG = const(0x0002)
CAP_FAULTS = const(0x0004)
CAP_AUTH = const(0x0008)
CAP_SIGNED_PODLETS = const(0x0010)
