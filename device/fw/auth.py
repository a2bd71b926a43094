"""The per-host pairing keys on the board's flash (podproto.pairing derives them)."""
import os


class KeyStore:
    """Per-host keys on the board's flash: one file per host, written whole then renamed,
    so a power cut leaves the old set or the new one."""

    MAX_HOSTS = 8

    def __init__(self, data_dir):
        self.dir = data_dir + "/hosts"
        try:
            os.mkdir(self.dir)
        except OSError:
            pass

    def _path(self, host_id):
        return "%s/%s" % (self.dir, "".join("%02x" % b for b in host_id))

    def get(self, host_id):
        if len(host_id) != 8:
            return None
        try:
            with open(self._path(host_id), "rb") as f:
                key = f.read()
        except OSError:
            return None
        return key if len(key) == 32 else None

    def put(self, host_id, key):
        names = sorted(os.listdir(self.dir))
        names = [n for n in names if not n.endswith(".new")]
        if len(names) >= self.MAX_HOSTS and self._path(host_id).rsplit("/", 1)[1] not in names:
            os.remove(self.dir + "/" + names[0])
        tmp = self._path(host_id) + ".new"
        with open(tmp, "wb") as f:
            f.write(key)
        os.rename(tmp, self._path(host_id))
