"""Profiles and podlet ID chips: canonical bytes, the envelope, signatures, CRC-8."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podproto import ProtocolError, podlet, profile, profile_v2, signing
from proto_strategies import podlets, profiles

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
PUB = signing.public_key(KEY)

# The example profile of shared/spec/sim.md.
VITAMIN_C = {"podlet_type": 3, "version": 1, "name": "vitamin-c", "outlet_target_c": 45.0,
             "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,
             "max_day_ul": 5000, "min_interval_s": 14400}
PODLET = {"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
          "expiry": "2027-06-30", "lot": "L2611"}


def test_spec_profile_canonical_bytes():
    raw = profile.encode(VITAMIN_C)
    assert raw.hex() == ("01" "03" "0100" "c8af0000" "58020000" "2c010000" "c4090000"
                         "88130000" "40380000" "09" + b"vitamin-c".hex())
    back = profile.decode(raw)
    assert back["outlet_target_mc"] == 45000 and back["outlet_target_c"] == 45.0
    assert profile.problem(back) is None


@settings(max_examples=200, deadline=None)
@given(profiles())
def test_profiles_round_trip_and_fit(p):
    raw = profile.encode(p)
    back = profile.decode(raw)
    assert {k: back[k] for k in p} == p
    assert profile.encode(back) == raw
    assert profile.problem(back) is None


@pytest.mark.parametrize("field, value", [
    ("outlet_target_c", 29.9), ("outlet_target_c", 55.001), ("session_s", 9),
    ("session_s", 3601), ("dose_rate_ul_min", 0), ("dose_rate_ul_min", 2001),
    ("max_session_ul", 0), ("max_session_ul", 20001), ("max_day_ul", 2499),
    ("max_day_ul", 100001), ("min_interval_s", 86401), ("name", ""), ("name", "x" * 25),
    ("name", "caf\u00e9"), ("name", "tab\there"), ("podlet_type", 256), ("version", -1),
    ("session_s", 600.0), ("session_s", "600"), ("outlet_target_c", "45"),
    ("outlet_target_c", float("nan")),
])
def test_envelope_names_the_field(field, value):
    p = dict(VITAMIN_C, **{field: value})
    assert profile.problem(p) == field
    with pytest.raises(ProtocolError, match=field) as err:
        profile.check(p)
    assert err.value.code == field            # the refusal, for callers to branch on
    with pytest.raises(ProtocolError, match=field):
        signing.sign_profile(KEY, p)


@pytest.mark.parametrize("field", sorted(VITAMIN_C))
def test_missing_field_is_named(field):
    p = dict(VITAMIN_C)
    del p[field]
    assert profile.problem(p) == field
    with pytest.raises(ProtocolError, match=field):
        profile.encode(p)


def test_envelope_edges_are_inside():
    p = dict(VITAMIN_C, outlet_target_c=30.0, session_s=10, dose_rate_ul_min=2000,
             max_session_ul=20000, max_day_ul=20000, min_interval_s=86400, name="x" * 24)
    assert profile.problem(p) is None
    assert profile.problem(dict(p, outlet_target_c=55.0, max_day_ul=100000)) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_profile_decode_raises_only_protocol_error(data):
    try:
        p = profile.decode(data)
    except ProtocolError:
        return
    assert profile.encode(p) == data


def test_signed_profile_verifies_and_every_bit_flip_is_rejected():
    signed = signing.sign_profile(KEY, VITAMIN_C)
    assert profile.verify(PUB, signed)["name"] == "vitamin-c"
    for bit in range(len(signed) * 8):
        bad = bytearray(signed)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ProtocolError):
            profile.verify(PUB, bytes(bad))


def test_signed_profile_sim_cases():
    body = profile.encode(VITAMIN_C)
    wrong_key = signing.sign_profile(OTHER_KEY, VITAMIN_C)
    tamper = body + signing.sign(KEY, profile.encode(dict(VITAMIN_C, version=2)))
    for signed, reason, code in ((body, "truncated|bad signature", "unsigned|bad_signature"),
                                 (wrong_key, "bad signature", "bad_signature"),
                                 (tamper, "bad signature", "bad_signature"),
                                 (body[:10], "truncated", "unsigned"),
                                 (None, "want bytes", "malformed")):
        with pytest.raises(ProtocolError, match=reason) as err:
            profile.verify(PUB, signed)
        assert err.value.code in code.split("|"), (reason, err.value.code)


def test_signed_profile_outside_envelope_is_rejected_after_a_good_signature():
    p = dict(VITAMIN_C, session_s=4000)
    body = profile.encode(p)
    with pytest.raises(ProtocolError, match="session_s"):
        profile.verify(PUB, body + signing.sign(KEY, body))


def test_crc8_is_dallas_maxim():
    assert podlet.crc8(b"123456789") == 0xA1      # CRC-8/MAXIM check value
    # Maxim application note 27's worked example: family 02, serial 00000001B81C.
    assert podlet.crc8(bytes([0x02, 0x1C, 0xB8, 0x01, 0, 0, 0])) == 0xA2
    rom = podlet.rom_id(0x0000C0FFEE01)
    assert rom[0] == 0x2D and rom[1:7] == bytes.fromhex("01eeffc00000")
    assert podlet.crc8(rom) == 0
    assert podlet.parse_rom(rom) == 0x0000C0FFEE01


def test_spec_podlet_image():
    image = signing.sign_podlet(KEY, PODLET)
    assert len(image) == podlet.IMAGE_LEN
    assert image[8:24].hex() == "01" "03" "b80b0000" + (10042).to_bytes(2, "little").hex() + \
        b"L2611".hex() + "000000"
    got = podlet.verify(PUB, image)
    assert got == dict(PODLET, expiry_day=10042)
    with pytest.raises(ProtocolError, match="bad signature"):
        podlet.verify(signing.public_key(OTHER_KEY), image)


@settings(max_examples=100, deadline=None)
@given(podlets())
def test_podlets_round_trip(p):
    image = podlet.encode(p, bytes(64))
    got, signed, sig = podlet.decode(image)
    assert {k: got[k] for k in p} == p
    assert signed == podlet.data_bytes(p)[1] and sig == bytes(64)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_podlet_decode_raises_only_protocol_error(data):
    image = bytearray(podlet.encode(data.draw(podlets()), bytes(64)))
    for _ in range(data.draw(st.integers(1, 4))):
        image[data.draw(st.integers(0, 23))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(image)))
    for candidate in (bytes(image), bytes(image[:cut])):
        try:
            podlet.decode(candidate)
        except ProtocolError:
            pass


@pytest.mark.parametrize("change, reason", [
    (lambda b: b.__setitem__(0, 0x28), "family"),
    (lambda b: b.__setitem__(7, b[7] ^ 1), "crc8"),
    (lambda b: b.__setitem__(8, 2), "format"),
    (lambda b: b.__setitem__(23, 0x41), "lot: bytes after"),
    (lambda b: b.__setitem__(16, 0x07), "lot"),
])
def test_podlet_rejections_name_what_was_wrong(change, reason):
    image = bytearray(signing.sign_podlet(KEY, PODLET))
    change(image)
    with pytest.raises(ProtocolError, match=reason):
        podlet.verify(PUB, bytes(image))


@pytest.mark.parametrize("field, value", [
    ("serial", "c0ffee"), ("serial", "zz00c0ffee01"), ("podlet_type", 300),
    ("capacity_ul", -1), ("expiry", "2027-02-30"), ("expiry", "1999-12-31"),
    ("expiry", "27-06-30"), ("lot", ""), ("lot", "TOOLONGLOT"), ("lot", "L 26"),
])
def test_podlet_encode_names_the_field(field, value):
    with pytest.raises(ProtocolError, match=field):
        signing.sign_podlet(KEY, dict(PODLET, **{field: value}))


def test_day_numbers():
    assert podlet.day_of(2000, 1, 1) == 0
    assert podlet.day_of(2000, 3, 1) == 60
    assert podlet.date_of(podlet.day_of(2179, 6, 1)) == (2179, 6, 1)
    for day in range(0, 65536, 97):
        assert podlet.day_of(*podlet.date_of(day)) == day


# ---- format 2: course, delivery pattern, warnings ------------------------------------------

# A course as issue 17 gives it: 4 sessions at least 6 days apart (a week advised), then
# every 180 days; a bolus every 30 s; a warning the user must acknowledge.
COURSE = dict(VITAMIN_C, course_sessions=4, min_spacing_s=6 * 86400,
              recommended_spacing_s=7 * 86400, maintenance_spacing_s=180 * 86400,
              pattern="pulsed", bolus_ul=20, period_s=30,
              warnings=[{"code": "pregnancy", "text": "Not when pregnant or nursing."}],
              acknowledge=True)


def test_v2_canonical_bytes_and_round_trip():
    raw = profile.encode(COURSE)
    v1 = profile.encode(VITAMIN_C)
    assert raw[0] == 2 and raw[1:len(v1)] == v1[1:]
    assert raw[len(v1):].hex() == (
        "04" "00e90700" "803a0900" "004eed00" "01" "1400" "1e00" "0000" "01" "01"
        "01" "1d" + b"Not when pregnant or nursing.".hex())
    back = profile.decode(raw)
    assert back["format"] == 2 and {k: back[k] for k in COURSE} == COURSE
    assert back["ramp_s"] == 0 and profile.problem(back) is None
    assert profile.encode(back) == raw
    assert len(raw) + profile.SIG_LEN <= profile_v2.SIGNED_MAX


def test_v1_dict_is_unchanged_by_v2():
    back = profile.decode(profile.encode(VITAMIN_C))
    assert "format" not in back and not set(profile.V2_FIELDS) & set(back)
    # A v2 dict that says nothing more than v1 still encodes as v2 (its format says so).
    assert profile.encode(dict(VITAMIN_C, format=2))[0] == 2


@pytest.mark.parametrize("change, field", [
    ({"course_sessions": 0}, "course_sessions"), ({"course_sessions": 25}, "course_sessions"),
    ({"min_spacing_s": 31536001}, "min_spacing_s"),
    ({"recommended_spacing_s": 86400}, "recommended_spacing_s"),
    ({"maintenance_spacing_s": 3600}, "maintenance_spacing_s"),
    ({"maintenance_spacing_s": 63072001}, "maintenance_spacing_s"),
    ({"pattern": "nappage"}, "pattern"),
    ({"bolus_ul": 0}, "bolus_ul"), ({"bolus_ul": 2501}, "bolus_ul"),
    ({"period_s": 1}, "period_s"), ({"period_s": 601}, "period_s"),
    ({"bolus_ul": 200, "period_s": 30}, "period_s"),     # 200 ul at 300 ul/min: 40 s
    ({"ramp_s": 5}, "ramp_s"),                            # not a ramped pattern
    ({"pattern": "ramped", "bolus_ul": 0, "period_s": 0}, "ramp_s"),
    ({"pattern": "ramped", "bolus_ul": 0, "period_s": 0, "ramp_s": 601}, "ramp_s"),
    ({"pattern": "continuous"}, "bolus_ul"),
    ({"warnings": [{"code": "pregnancy", "text": "x" * 61}]}, "warnings"),
    ({"warnings": [{"code": "pregnancy", "text": ""}]}, "warnings"),
    ({"warnings": [{"code": "gluten", "text": "x"}]}, "warnings"),
    ({"warnings": [{"code": "kidney", "text": "x"}] * 5}, "warnings"),
    ({"warnings": [], "acknowledge": True}, "acknowledge"),
    ({"acknowledge": 1}, "acknowledge"), ({"course_sessions": True}, "course_sessions"),
])
def test_v2_envelope_names_the_field(change, field):
    p = dict(COURSE, **change)
    assert profile.problem(p) == field
    with pytest.raises(ProtocolError, match=field):
        signing.sign_profile(KEY, p)


def test_v2_decode_refuses_what_encode_never_makes():
    raw = bytearray(profile.encode(COURSE))
    at = len(profile.encode(VITAMIN_C))
    for offset, value, reason in ((13, 3, "pattern"), (20, 2, "flags"),
                                  (22, 9, "warnings"), (21, 2, "warnings")):
        bad = bytearray(raw)
        bad[at + offset] = value
        with pytest.raises(ProtocolError, match=reason):
            profile.decode(bytes(bad))
    with pytest.raises(ProtocolError, match="after the warnings"):
        profile.decode(bytes(raw) + b"x")
    with pytest.raises(ProtocolError, match="truncated"):
        profile.decode(bytes(raw[:at + 5]))


def test_signed_v2_verifies_and_a_bit_flip_is_rejected():
    signed = signing.sign_profile(KEY, COURSE)
    assert profile.verify(PUB, signed)["warnings"] == COURSE["warnings"]
    for bit in range(0, len(signed) * 8, 7):
        bad = bytearray(signed)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ProtocolError):
            profile.verify(PUB, bytes(bad))
