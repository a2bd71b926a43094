"""The manufacturer's signed files, as a library (steamer_mfg.cli is its face; the
simulator's driver and the tests use it too): profile JSON read and checked
(read_profile, parse_profile_json, profile_problem, PROFILE_FIELDS), signed profiles
(sign_profile), podlet ID-chip images (podlet_dict, podlet_image; binary, or hex text
with `steamer mfg podlet-image --hex`: as_bytes reads either), and their verification
(kind_of, verify_bytes, Verified, signer_hint) with podproto's own verifier. Keys are
steamer_mfg.keys'."""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from podproto import ProtocolError, podlet, profile, signing
from steamer.inputs import InputTooLarge, read_input
from steamer_mfg.keys import MfgError


def as_bytes(data: bytes) -> bytes:
    """The file's bytes, or the bytes a hex-text file (podlet-image --hex) spells."""
    text = data.strip()
    if text and len(text) % 2 == 0 and all(c in b"0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text.decode())
    return data


# The most read of each input file: a PEM key is about 120 bytes, a profile's JSON a few
# hundred, a signed profile or a podlet image (or its hex) a few hundred.
PROFILE_JSON_MAX_BYTES = 64 << 10
VERIFY_MAX_BYTES = 64 << 10

# The fields of a profile JSON file: podproto.profile's, the target in either spelling.
PROFILE_FIELDS = ("podlet_type", "version", "name", "outlet_target_c", "outlet_target_mc",
                  "session_s", "dose_rate_ul_min", "max_session_ul", "max_day_ul",
                  "min_interval_s", "format") + profile.V2_FIELDS

_SERIAL = re.compile(r"[0-9a-fA-F]{12}\Z")
_NAME_LEN_AT = 28   # podproto.profile: the name's length byte
_UNUSED = slice(podlet.ROM_LEN + podlet.DATA_LEN + podlet.SIG_LEN, podlet.IMAGE_LEN)

# ---- profiles ------------------------------------------------------------------------------

def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise MfgError(f"duplicate key '{key}'")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise MfgError(f"{name} is not a JSON number")


def parse_profile_json(text: str, where: str = "profile") -> dict:
    """The profile dict of JSON text, checked against the hardware envelope; MfgError
    names the line and column of bad JSON, or the field that is wrong."""
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise MfgError(f"{where}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
    except MfgError as e:
        raise MfgError(f"{where}: not valid JSON ({e})") from None
    problem = profile_problem(raw)
    if problem:
        raise MfgError(f"{where}: {problem}")
    return raw


def read_profile(path: Path) -> dict:
    """parse_profile_json of a file."""
    path = Path(path)
    try:
        text = read_input(path, PROFILE_JSON_MAX_BYTES, "a profile").decode("utf-8")
    except InputTooLarge as e:
        raise MfgError(str(e)) from None
    except OSError as e:
        raise MfgError(f"{path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise MfgError(f"{path}: not UTF-8 text (a profile is a JSON file)") from None
    return parse_profile_json(text, str(path))


def profile_problem(p: Any) -> str | None:
    """One line naming the first field of a profile dict outside the hardware envelope
    (podproto.profile.problem decides), or an unknown field; None when it fits."""
    if not isinstance(p, dict):
        return "want a JSON object of profile fields"
    for key in p:
        if key not in PROFILE_FIELDS:
            close = difflib.get_close_matches(key, PROFILE_FIELDS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else " (it would not be signed)"
            return f"{key}: unknown field{hint}"
    if "outlet_target_c" in p and "outlet_target_mc" in p:
        return "outlet_target_mc: give outlet_target_c or outlet_target_mc, not both"
    for key, value in p.items():
        if isinstance(value, bool) and key != "acknowledge":
            # podproto takes True for 1; a profile never means it
            want = {"name": "a string", "outlet_target_c": "a number"}.get(key, "an integer")
            return f"{key}: want {want}, got {json.dumps(value)}"
    field = profile.problem(p)
    if field is None:
        return None
    if field == "format" or (field in profile.V2_FIELDS and field in p):
        return _v2_problem(p, field)
    if field == "outlet_target_c" and "outlet_target_mc" in p:
        field = "outlet_target_mc"
    if field not in p:
        return f"{field}: missing"
    value = p[field]
    shown = json.dumps(value)
    if field == "name":
        return (f"name: want 1..{profile.NAME_MAX} printable ASCII characters, got {shown}")
    lo, hi = profile.ENVELOPE.get(field, (0, 0))
    if field == "max_day_ul" and isinstance(value, int) and lo <= value <= hi:
        return f"max_day_ul: {value} is below max_session_ul {p['max_session_ul']}"
    if field == "outlet_target_c":
        lo, hi = profile.ENVELOPE["outlet_target_mc"]
        return (f"outlet_target_c: want a number {lo / 1000:.1f}..{hi / 1000:.1f} (C, the "
                f"hardware envelope), got {shown}")
    return f"{field}: want an integer {lo}..{hi} (the hardware envelope), got {shown}"


def _v2_problem(p: dict, field: str) -> str:
    """One line on a format-2 field outside its bounds (podproto.profile_v2)."""
    from podproto import names, profile_v2 as v2
    value = p.get(field)
    shown = json.dumps(value)
    lo, hi = v2.ENVELOPE.get(field, (0, 0))
    pattern = p.get("pattern", "continuous")
    codes = ", ".join(names.WARNING_CODES[1:])
    why = {
        "format": f"want 1 or 2 (2: with a course, pattern and warnings), got {shown}",
        "course_sessions": f"want an integer {lo}..{hi} (sessions in the initial series), "
                           f"got {shown}",
        "min_spacing_s": f"want an integer 0..{hi} (seconds, at most a year), got {shown}",
        "recommended_spacing_s": f"want an integer from min_spacing_s "
                                 f"({p.get('min_spacing_s', 0)}) to {hi}, got {shown}",
        "maintenance_spacing_s": f"want 0 (no maintenance) or an integer from "
                                 f"min_spacing_s ({p.get('min_spacing_s', 0)}) to {hi}, "
                                 f"got {shown}",
        "pattern": f"want one of {', '.join(v2.PATTERNS)}, got {shown}",
        "warnings": f"want at most {v2.WARNINGS_MAX} warnings, each {{\"code\": one of "
                    f"{codes}, \"text\": 1..{v2.WARNING_TEXT_MAX} printable ASCII "
                    f"characters}}, got {shown}",
        "acknowledge": f"want true or false, and true only with a warning, got {shown}",
    }
    if field in ("bolus_ul", "period_s", "ramp_s"):
        wanted = {"bolus_ul": "pulsed", "period_s": "pulsed", "ramp_s": "ramped"}[field]
        if pattern != wanted:
            return f"{field}: only a {wanted} pattern has one (this one is {pattern}), got {shown}"
        if field == "bolus_ul":
            most = min(hi, p.get("max_session_ul", hi))
            return f"bolus_ul: want an integer 1..{most} (µl, at most max_session_ul), got {shown}"
        if field == "period_s":
            rate = p.get("dose_rate_ul_min") or 1
            least = max(lo, -(-p.get("bolus_ul", 0) * 60 // rate))
            most = min(hi, p.get("session_s", hi))
            return (f"period_s: want an integer {least}..{most} (s: long enough to pump "
                    f"the bolus at dose_rate_ul_min, at most session_s), got {shown}")
        return f"ramp_s: want an integer 1..{p.get('session_s', hi)} (s, at most session_s), got {shown}"
    return f"{field}: {why[field]}"


def sign_profile(p: dict, seed: bytes) -> bytes:
    """The signed profile (canonical bytes + signature) of a profile dict, which must fit
    the envelope. The result is checked with podproto's verifier before it is returned."""
    problem = profile_problem(p)
    if problem:
        raise MfgError(problem)
    signed = signing.sign_profile(seed, p)
    profile.verify(signing.public_key(seed), signed)   # the device's code agrees
    return signed


# ---- podlets -------------------------------------------------------------------------------

# podproto.podlet's field names -> the podlet-image options that set them.
_PODLET_OPTIONS = {"serial": "--serial", "podlet_type": "--type", "capacity_ul": "--capacity-ul",
                   "expiry": "--expiry", "lot": "--lot"}


def podlet_dict(serial: str, podlet_type: int, capacity_ul: int, expiry: str, lot: str) -> dict:
    """The podlet dict (shared/spec/sim.md's form) of podlet-image's options, checked;
    MfgError names the option."""
    if not isinstance(serial, str) or not _SERIAL.match(serial):
        raise MfgError(f"--serial: want 12 hex digits (the 48-bit serial), got {serial!r}")
    if not 1 <= capacity_ul <= 0xFFFFFFFF:
        raise MfgError(f"--capacity-ul: want 1..4294967295, got {capacity_ul}")
    pod = {"serial": serial.lower(), "podlet_type": podlet_type, "capacity_ul": capacity_ul,
           "expiry": expiry, "lot": lot}
    try:
        podlet.data_bytes(pod)
    except ProtocolError as e:
        field, _, message = str(e).removeprefix("podlet ").partition(": ")
        option = _PODLET_OPTIONS.get(field, field)
        raise MfgError(f"{option}: {message}, got {pod.get(field, '')!r}") from None
    return pod


def podlet_image(pod: dict, seed: bytes) -> bytes:
    """The signed 136-byte ID-chip image of a podlet dict, checked with podproto's
    verifier before it is returned."""
    image = signing.sign_podlet(seed, pod)
    podlet.verify(signing.public_key(seed), image)
    return image


# ---- verification --------------------------------------------------------------------------

@dataclasses.dataclass
class Verified:
    """What verify_bytes found. `kind` is "profile", "podlet" or "unknown"; `fields` the
    decoded profile or podlet (as far as it could be decoded)."""
    ok: bool
    kind: str
    reason: str | None
    size_bytes: int
    sha256: str
    public_hex: str
    fields: dict | None = None

    def details(self) -> list[str]:
        """A format-2 profile's course, delivery pattern and warnings, a line each."""
        f = self.fields or {}
        if self.kind != "profile" or "course_sessions" not in f:
            return []
        from steamer import course
        lines = [f"course: {course.course_text(f)}", f"delivery: {course.pattern_text(f)}"]
        must = ", to be acknowledged before the first session" if f.get("acknowledge") else ""
        lines.append(f"warnings ({len(f['warnings'])}{must}):" if f["warnings"]
                     else "warnings: none")
        lines += [f"  - {w}" for w in course.warning_lines(f)]
        return lines

    def describe(self) -> str:
        what = {"profile": "signed profile", "podlet": "podlet image"}.get(self.kind, "file")
        f = self.fields or {}
        if self.kind == "profile" and f:
            what += f" '{f['name']}' (podlet_type {f['podlet_type']}, version {f['version']})"
        elif self.kind == "podlet" and f:
            what += (f" {f['serial']} (type {f['podlet_type']}, {f['capacity_ul']} ul, "
                     f"expiry {f['expiry']}, lot {f['lot']})")
        return what

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def kind_of(data: bytes) -> str:
    """"podlet" for an ID-chip image's size, "profile" for a profile's format byte or for
    the size its name length gives (so a damaged one is still told apart), else
    "unknown". (A podlet image never starts with 1 or 2: that is its family code, 0x2D.)"""
    n = len(data)
    if n == podlet.IMAGE_LEN and data[0] not in profile.FORMATS:
        return "podlet"
    if n and data[0] in profile.FORMATS:
        return "profile"
    if n > _NAME_LEN_AT and n == _NAME_LEN_AT + 1 + data[_NAME_LEN_AT] + profile.SIG_LEN:
        return "profile"
    return "unknown"


def verify_bytes(data: bytes, public: bytes) -> Verified:
    """Checks a signed profile or podlet image against a public key, with podproto's
    verifier: signature, encoding, and (profiles) the hardware envelope; (podlets) the
    ROM ID's CRC-8 and that the unsigned memory is blank as podlet-image leaves it."""
    data = bytes(data)
    kind = kind_of(data)
    result = Verified(False, kind, None, len(data), hashlib.sha256(data).hexdigest(),
                      public.hex())
    try:
        if kind == "profile":
            body = data[:-profile.SIG_LEN] if len(data) > profile.SIG_LEN else data
            try:
                result.fields = plain_fields(profile.decode(body))
            except ProtocolError:
                pass
            result.fields = plain_fields(profile.verify(public, data))
        elif kind == "podlet":
            result.fields = plain_fields(podlet.decode(data)[0])
            podlet.verify(public, data)
            if data[_UNUSED] != b"\xff" * len(data[_UNUSED]):
                raise ProtocolError("podlet image: memory 80..127 is not blank (0xFF); the "
                                    "signature does not cover it")
        else:
            first = f"first byte 0x{data[0]:02x}" if data else "empty"
            raise ProtocolError(f"neither a signed profile nor a {podlet.IMAGE_LEN}-byte "
                                f"podlet image ({len(data)} bytes, {first})")
    except ProtocolError as e:
        result.reason = str(e)
        if "bad signature" in result.reason:
            result.reason += signer_hint(data, kind, public)
        return result
    result.ok = True
    return result


def plain_fields(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if k not in ("outlet_target_mc", "expiry_day")}


def signer_hint(data: bytes, kind: str, public: bytes) -> str:
    # A production key mixed up with the simulator's is the likely mistake: say so.
    from steamer_mfg.devkeys import DEV_PUBLIC
    if public == DEV_PUBLIC:
        return f" (not signed by {public.hex()[:16]}..., or altered since)"
    try:
        (profile.verify if kind == "profile" else podlet.verify)(DEV_PUBLIC, data)
        return " (it is signed with the simulator's DEVELOPMENT key, not this one)"
    except ProtocolError:
        return f" (not signed by {public.hex()[:16]}..., or altered since)"


# ---- the command line -----------------------------------------------------------------------
