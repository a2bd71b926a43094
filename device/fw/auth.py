"""The per-host pairing keys on the board's flash (podproto.pairing derives them)."""
import os
from binascii import hexlify


class KeyStore:
    """Per-host keys on the board's flash: one file per host, written whole then renamed,
    so a power cut leaves the old set or the new one. Each file holds the key and a use
    number (u32): the host paired or authenticated most recently has the highest, and a
    new host beyond MAX_HOSTS takes the place of the least recently used one."""

    MAX_HOSTS = 8

    def __init__(self, data_dir):
        self.dir = data_dir + "/hosts"
        try:
            os.mkdir(self.dir)
        except OSError:
            pass

    def _name(self, host_id):
        return hexlify(host_id).decode()

    def _read(self, name):
        try:
            with open(self.dir + "/" + name, "rb") as f:
                data = f.read()
        except OSError:
            return None
        # 32 bytes: written before use numbers were kept, least recent of all.
        if len(data) == 32:
            return data, 0
        if len(data) == 36:
            return data[:32], int.from_bytes(data[32:], "little")
        return None

    def _uses(self):
        """{file name: use number} of every stored host."""
        out = {}
        for name in os.listdir(self.dir):
            if not name.endswith(".new"):
                got = self._read(name)
                out[name] = got[1] if got else -1
        return out

    def _write(self, name, key, use):
        tmp = self.dir + "/" + name + ".new"
        with open(tmp, "wb") as f:
            f.write(bytes(key) + use.to_bytes(4, "little"))
        os.rename(tmp, self.dir + "/" + name)

    def get(self, host_id):
        if len(host_id) != 8:
            return None
        got = self._read(self._name(host_id))
        return got[0] if got else None

    def put(self, host_id, key):
        name = self._name(host_id)
        uses = self._uses()
        if len(uses) >= self.MAX_HOSTS and name not in uses:
            oldest = None
            for n in uses:
                if oldest is None or uses[n] < uses[oldest]:
                    oldest = n
            os.remove(self.dir + "/" + oldest)
        self._write(name, key, max(uses.values()) + 1 if uses else 1)

    def used(self, host_id):
        """host_id authenticated: it becomes the most recently used. Written only when
        another host was used since, so a host that reconnects costs no flash write."""
        name = self._name(host_id)
        uses = self._uses()
        mine = uses.pop(name, None)
        if mine is None or not uses:
            return
        top = max(uses.values())
        got = self._read(name)
        if got is not None and mine <= top:
            self._write(name, got[0], top + 1)
