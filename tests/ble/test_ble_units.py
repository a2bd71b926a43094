"""The BLE pieces on their own: podproto.pairing against the standard library and
`cryptography`, advertising parsing, and the air's ceiling arithmetic."""
from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from podproto import gatt, pairing
from steamer_sim.air import LinkParams
from steamer_sim.backend import parse_ad


def test_hmac_sha256_matches_the_standard_library():
    for n in (0, 1, 31, 32, 64, 65, 200):
        key = os.urandom(n)
        msg = os.urandom(n * 3)
        assert pairing.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


def test_x25519_agrees_with_cryptography_both_ways():
    for _ in range(5):
        priv, pub = pairing.keypair()
        other = X25519PrivateKey.generate()
        other_pub = other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        assert pairing.x25519(priv, other_pub) == other.exchange(X25519PublicKey.from_public_bytes(pub))
    # RFC 7748 section 5.2, first vector.
    k = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert pairing.x25519(k, u).hex() == (
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")


def test_both_ends_derive_the_same_key_and_macs():
    hp, hpub = pairing.keypair()
    dp, dpub = pairing.keypair()
    hn, dn = os.urandom(16), os.urandom(16)
    kh = pairing.pair_key(pairing.x25519(hp, dpub), hn, dn)
    kd = pairing.pair_key(pairing.x25519(dp, hpub), hn, dn)
    assert kh == kd
    hid = pairing.host_id_of(hpub)
    assert len(hid) == 8
    assert pairing.equal(pairing.auth_mac(kh, dn, hn, hid), pairing.auth_mac(kd, dn, hn, hid))
    assert not pairing.equal(pairing.auth_mac(kh, dn, hn, hid), pairing.auth_mac(kh, hn, dn, hid))


def test_advertising_data_parses_to_name_uuid_and_status():
    uuid = bytes(reversed(bytes.fromhex(gatt.SERVICE_UUID.replace("-", ""))))
    adv = b"\x02\x01\x06" + bytes((17, 0x07)) + uuid + bytes((6, 0xFF, 0xFF, 0xFF, 1, 0, 1))
    got = parse_ad(adv + b"\x05\x09abcd")
    assert got["uuids"] == [gatt.SERVICE_UUID]
    assert got["mfr"] == {0xFFFF: b"\x01\x00\x01"}
    assert got["name"] == "abcd"
    assert parse_ad(b"\x09\xff") == {"name": None, "uuids": [], "mfr": {}}   # truncated


def test_the_link_ceiling_is_pdus_per_event_times_payload_per_interval():
    p = LinkParams(interval_ms=30.0, pdus_per_event=6)
    assert p.ceiling_bytes_s(23) == 6 * 20 * 1000 / 30
    assert p.ceiling_bytes_s(247) == 6 * 244 * 1000 / 30


def test_a_status_frame_is_what_gatt_says_state_notifications_need():
    import podproto
    status = {"type": "status", "state": 0, "fault": 0, "boiler_mc": 0, "outlet_mc": 0,
              "heater_pct": 0, "pump_ul_min": 0, "session_ul": 0, "session_s": 0,
              "podlet_type": 0, "clock_s": 0, "limit_ul": 0, "limit_s": 0,
              "podlet_state": 0, "podlet_reason": 0}
    assert len(podproto.encode(status)) == gatt.STATE_FRAME_BYTES
    assert gatt.STATE_NOTIFY_MIN_MTU == gatt.STATE_FRAME_BYTES + 3
