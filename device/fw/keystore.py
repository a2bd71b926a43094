"""The per-host pairing keys on the board's flash (podproto.pairing derives them)."""
import os
from binascii import hexlify, unhexlify

from fw import copies


class KeyStore:
    """Per-host keys on the board's flash: one record of every host (fw.copies: two
    copies, each with its commit counter and SHA-256), a line per host
    `<host id hex> <key hex> <use>`. The use number orders the hosts: the host paired or
    authenticated most recently has the highest, and a new host beyond MAX_HOSTS takes
    the place of the least recently used one. A copy that fails its hash or was rolled
    back could bring back a host the store had let go: in doubt, and with no valid copy,
    the store holds no host (each pairs again, with the button). The store of before the
    copies (a file per host in `hosts/`) is taken over once."""

    MAX_HOSTS = 8

    def __init__(self, data_dir):
        self.old_dir = data_dir + "/hosts"
        self.copies = copies.Copies(data_dir, "hosts")
        self.keys = {}           # host id hex -> [key, use]
        self.problem = None      # why the keys on flash were not taken
        try:
            i = self.copies.newest()
        except copies.RecordError as e:
            self.problem = str(e)
            return
        if i < 0:
            self._take_over()
        elif self.copies.doubt:
            self.problem = self.copies.doubt
        else:
            try:
                for line in self.copies.lines(i):
                    name, key, use = line.split()
                    self.keys[name.decode()] = [unhexlify(key), int(use)]
            except ValueError:
                self.keys = {}
                self.problem = "hosts unreadable"

    def _take_over(self):
        try:
            names = os.listdir(self.old_dir)
        except OSError:
            return
        for name in names:
            path = self.old_dir + "/" + name
            if not name.endswith(".new"):
                with open(path, "rb") as f:
                    data = f.read()
                # 32 bytes: written before use numbers were kept, least recent of all.
                if len(data) in (32, 36) and len(name) == 16:
                    self.keys[name] = [data[:32], int.from_bytes(data[32:], "little")]
        self._write()
        for name in names:
            os.remove(self.old_dir + "/" + name)
        os.rmdir(self.old_dir)

    def _name(self, host_id):
        return hexlify(host_id).decode()

    def _write(self):
        with self.copies.writer() as f:
            for name in self.keys:
                key, use = self.keys[name]
                f.write("%s %s %d\n" % (name, hexlify(key).decode(), use))

    def _top(self):
        top = 0
        for name in self.keys:
            top = max(top, self.keys[name][1])
        return top

    def get(self, host_id):
        if len(host_id) != 8:
            return None
        got = self.keys.get(self._name(host_id))
        return got[0] if got else None

    def put(self, host_id, key):
        name = self._name(host_id)
        keys = self.keys
        if len(keys) >= self.MAX_HOSTS and name not in keys:
            oldest = None
            for n in keys:
                if oldest is None or keys[n][1] < keys[oldest][1]:
                    oldest = n
            del keys[oldest]
        keys[name] = [bytes(key), self._top() + 1]
        self._write()

    def used(self, host_id):
        """host_id authenticated: it becomes the most recently used. Written only when
        another host was used since, so a host that reconnects costs no flash write."""
        got = self.keys.get(self._name(host_id))
        if got is None:
            return
        top = 0
        for name in self.keys:
            if self.keys[name] is not got:
                top = max(top, self.keys[name][1])
        if got[1] <= top:
            got[1] = top + 1
            self._write()
