"""The one exception podproto raises for bad input."""


class ProtocolError(Exception):
    """Bytes, a message or a profile that the protocol does not accept.

    `str(err)` (and `err.args[0]`) is the reason, naming the field or check that failed.
    """
