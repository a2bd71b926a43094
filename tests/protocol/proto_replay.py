"""Replays test vectors through podproto; the same file runs on CPython and MicroPython.

One vector per line, "<kind> <payload>"; one output line per vector:
  M <json>   encode a message (bytes as {"$b": hex})  -> "ok <frame hex>" | "err"
  D <hex>    decode a frame                           -> "ok <re-encoded hex>" | "err"
  R <hex,..> feed PDUs to a fresh Reassembler         -> one token per PDU: "-" waiting,
                                                         frame hex when complete, "x" error
  P <hex>    decode a profile                         -> "ok <re-encoded hex> <problem>" | "err"
  G <hex>    decode a podlet image                    -> "ok <serial> <expiry_day>" | "err"
  S <pub hex> <signed hex>  verify a signed profile   -> "ok" | "err"
  E <json>   a journal record through logevents      -> "ok <log_records frame hex> <the
                                                         record back, fields sorted>"
  A <key hex> <ctr> <json>  seal a command with a session key (pairing.session_pads of
             key) and counter                         -> "ok <frame hex>" | "err"
  T <key hex> <frame hex>   check a sealed frame's tag -> "ok <ctr> <1|0>" | "err"
  X <scalar hex> <u hex>    X25519                    -> "ok <32 bytes hex>"
Run on MicroPython as: micropython proto_replay.py VECTORS
"""
import binascii
import json
import sys

import podproto
from podproto import link, logevents, pairing, podlet, profile


def _unjson(v):
    if isinstance(v, dict):
        if "$b" in v:
            return binascii.unhexlify(v["$b"])
        return {k: _unjson(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_unjson(x) for x in v]
    return v


def _hex(b):
    return binascii.hexlify(bytes(b)).decode()


def replay_line(line):
    kind, _, rest = line.partition(" ")
    try:
        if kind == "M":
            return "ok " + _hex(podproto.encode(_unjson(json.loads(rest))))
        if kind == "D":
            return "ok " + _hex(podproto.encode(podproto.decode(binascii.unhexlify(rest))))
        if kind == "R":
            r = link.Reassembler()
            out = []
            for h in rest.split(","):
                try:
                    n = r.feed(binascii.unhexlify(h))
                    out.append(_hex(r.frame(n)) if n else "-")
                except podproto.ProtocolError:
                    out.append("x")
            return " ".join(out)
        if kind == "P":
            p = profile.decode(binascii.unhexlify(rest))
            return "ok %s %s" % (_hex(profile.encode(p)), profile.problem(p))
        if kind == "G":
            d = podlet.decode(binascii.unhexlify(rest))[0]
            return "ok %s %d" % (d["serial"], d["expiry_day"])
        if kind == "E":
            entry = logevents.to_wire(7, json.loads(rest))
            frame = podproto.encode({"type": "log_records", "id": 1, "records": [entry]})
            back = logevents.from_wire(podproto.decode(frame)["records"][0])
            fields = " ".join("%s=%s" % (k, ("%.3f" % v) if isinstance(v, float) else v)
                              for k, v in sorted(back["payload"].items()))
            return "ok %s %s %s" % (_hex(frame), back["kind"], fields)
        if kind == "A":
            key, ctr, msg = rest.split(" ", 2)
            session = pairing.session_pads(binascii.unhexlify(key), bytes(16), bytes(16), bytes(8))
            return "ok " + _hex(pairing.seal(_unjson(json.loads(msg)), session, int(ctr)))
        if kind == "T":
            key, frame = rest.split(" ")
            session = pairing.session_pads(binascii.unhexlify(key), bytes(16), bytes(16), bytes(8))
            frame = binascii.unhexlify(frame)
            msg = podproto.decode(frame)
            if "tag" not in msg:
                return "err"
            return "ok %d %d" % (msg["ctr"], 1 if pairing.tag_ok(session, frame, msg) else 0)
        if kind == "X":
            scalar, u = rest.split(" ")
            return "ok " + _hex(pairing.x25519(binascii.unhexlify(scalar), binascii.unhexlify(u)))
        if kind == "S":
            pub, signed = rest.split(" ")
            profile.verify(binascii.unhexlify(pub), binascii.unhexlify(signed))
            return "ok"
    except podproto.ProtocolError:
        return "err"
    return "?"


def main(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                print(replay_line(line))


if __name__ == "__main__":
    main(sys.argv[1])
