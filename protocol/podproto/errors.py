"""The one exception podproto raises for bad input."""


class ProtocolError(Exception):
    """Bytes, a message or a profile that the protocol does not accept.

    `str(err)` (and `err.args[0]`) is the text, naming the field or check that failed;
    `err.code` is the refusal as a word callers branch on (never the text): "malformed"
    unless the raiser names it ("crc", "bad_signature", "unsigned", "too_large", or the
    profile field outside the hardware envelope).
    """

    def __init__(self, text, code="malformed"):
        super().__init__(text)
        self.code = code
