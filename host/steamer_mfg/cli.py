"""`steamer mfg`: the manufacturer's signing key, signed treatment profiles and podlet
ID-chip images, and their verification.

    steamer mfg keygen --out keys/mfg.pem                   # prints the public key (hex)
    steamer mfg pubkey keys/mfg.pem
    steamer mfg sign-profile vitamin-c.json --key keys/mfg.pem -o vitamin-c.bin
    steamer mfg podlet-image --serial 0000c0ffee01 --type 3 --capacity-ul 3000 \\
        --expiry 2027-06-30 --lot L2611 --key keys/mfg.pem -o podlet.bin
    steamer mfg verify vitamin-c.bin --pub 0a1e69fe...      # or --key keys/mfg.pem
    steamer mfg provision-key --port /dev/ttyACM0 --key keys/mfg.pem   # steamer_mfg.trustkey
    steamer mfg adc-cal --port /dev/ttyACM0       # the calibration plug in: steamer_mfg.adccal

Library use (the CLI is a thin layer over steamer_mfg.keys and steamer_mfg.images)::

    from steamer_mfg.images import read_profile, sign_profile, verify_bytes
    from steamer_mfg.keys import generate_key, load_key
    public = generate_key(Path("mfg.pem"))
    seed = load_key(Path("mfg.pem"))
    signed = sign_profile(read_profile(Path("vitamin-c.json")), seed)
    result = verify_bytes(signed, public)      # result.ok, result.kind, result.reason

The key file is an Ed25519 private key (its 32-byte seed) as unencrypted PKCS#8 PEM, the
form `openssl genpkey -algorithm ed25519` writes too, readable by its owner only (0600).
The private key never leaves it: nothing here prints it or puts it in an output. Formats
(docs: protocol/README.md): a signed profile is podproto.profile's canonical bytes + the
64-byte signature; a podlet image is podproto.podlet's 136 bytes (ROM ID + memory).
Verification runs podproto's own verifier, the code the steamer runs.

Every error is an MfgError whose str is one line naming what was wrong (the field, the
option, the file and line). Exit codes: 0 done, 1 verification failed (or an output
could not be written), 2 the inputs were wrong (usage, key file, JSON, envelope).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import textwrap
from pathlib import Path

from podproto import podlet, profile, signing
from steamer.inputs import InputTooLarge, read_input
from steamer.terminal import BAD_INPUT, FAILED, fail, json_out, print_table
from steamer.terminal import command as face_command

# The input limits are imported too: tests/host/test_input_files.py reads them from here.
from steamer_mfg.images import (PROFILE_FIELDS, PROFILE_JSON_MAX_BYTES,  # noqa: F401
                                VERIFY_MAX_BYTES, as_bytes, plain_fields, podlet_dict,
                                podlet_image, read_profile, sign_profile, verify_bytes)
from steamer_mfg.keys import (KEY_FILE_MAX_BYTES, MfgError, generate_key,  # noqa: F401
                              load_key, parse_public_hex)

def _write_output(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as e:
        raise _Failed(f"{path}: {e.strerror}") from None


class _Failed(MfgError):
    """An output could not be written (exit 1, not 2)."""


def _print_json(obj: object) -> None:
    json_out(obj, indent=2, ensure_ascii=True)


def _cmd_keygen(args: argparse.Namespace) -> int:
    public = generate_key(Path(args.out), args.force)
    if args.json:
        _print_json({"key_file": str(args.out), "public_hex": public.hex()})
    else:
        print(public.hex())
        print(f"wrote the private key to {args.out} (mode 0600): keep it secret and "
              "backed up; give devices the public key above", file=sys.stderr)
    return 0


def _cmd_pubkey(args: argparse.Namespace) -> int:
    public = signing.public_key(load_key(Path(args.keyfile)))
    if args.json:
        _print_json({"key_file": str(args.keyfile), "public_hex": public.hex()})
    else:
        print(public.hex())
    return 0


def _summary(kind: str, out: str | None, data: bytes, public: bytes, fields: dict) -> dict:
    return {"kind": kind, "file": out, "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "public_hex": public.hex(),
            "fields": fields}


def _cmd_sign_profile(args: argparse.Namespace) -> int:
    src = Path(args.profile)
    p = read_profile(src)
    seed = load_key(Path(args.key))
    out = Path(args.output) if args.output else src.with_suffix(".bin")
    if out.resolve() == src.resolve():
        raise MfgError(f"-o: '{out}' is the input file")
    signed = sign_profile(p, seed)
    _write_output(out, signed)
    fields = plain_fields(profile.decode(signed[:-profile.SIG_LEN]))
    info = _summary("profile", str(out), signed, signing.public_key(seed), fields)
    if args.json:
        _print_json(info)
    else:
        print(f"wrote {out}: signed profile '{fields['name']}' (podlet_type "
              f"{fields['podlet_type']}, version {fields['version']})")
        print(f"size: {info['size_bytes']} bytes")
        print(f"sha256: {info['sha256']}")
        for line in verify_bytes(signed, signing.public_key(seed)).details():
            print(line)
    return 0


def _cmd_podlet_image(args: argparse.Namespace) -> int:
    pod = podlet_dict(args.serial, args.type, args.capacity_ul, args.expiry, args.lot)
    seed = load_key(Path(args.key))
    import datetime
    today = datetime.datetime.now(datetime.timezone.utc).date()
    if datetime.date.fromisoformat(pod["expiry"]) < today:
        print(f"steamer mfg podlet-image: warning: --expiry {pod['expiry']} is already past "
              f"(today is {today}): every steamer will refuse this podlet", file=sys.stderr)
    image = podlet_image(pod, seed)
    out = args.output
    if out is None and not args.hex:
        out = f"podlet-{pod['serial']}.bin"
    if out is not None:
        _write_output(Path(out), (image.hex() + "\n").encode() if args.hex else image)
    info = _summary("podlet", out, image, signing.public_key(seed), pod)
    info["rom_id_hex"] = image[:podlet.ROM_LEN].hex()
    info["image_hex"] = image.hex()
    if args.json:
        _print_json(info)
        return 0
    lines = [f"{'wrote ' + out + ': podlet' if out else 'podlet image'} {pod['serial']} (type "
             f"{pod['podlet_type']}, {pod['capacity_ul']} ul, expiry {pod['expiry']}, "
             f"lot {pod['lot']})",
             f"rom id: {info['rom_id_hex']}",
             f"size: {info['size_bytes']} bytes",
             f"sha256: {info['sha256']}"]
    if args.hex and out is None:
        print(image.hex())   # stdout carries the image alone; the rest is for people
        print("\n".join(lines), file=sys.stderr)
    else:
        print("\n".join(lines))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    public = (parse_public_hex(args.pub) if args.pub is not None
              else signing.public_key(load_key(Path(args.key))))
    path = Path(args.file)
    try:
        data = as_bytes(read_input(path, VERIFY_MAX_BYTES,
                                   "a signed profile or a podlet image"))
    except InputTooLarge as e:
        raise MfgError(str(e)) from None
    except OSError as e:
        raise MfgError(f"{path}: {e.strerror}") from None
    result = verify_bytes(data, public)
    if args.json:
        _print_json(dict(result.to_json(), file=str(path)))
    elif result.kind == "unknown":
        print(f"FAIL {path}: {result.reason}")
    elif result.ok:
        print(f"OK {path}: {result.describe()}, signature good for key {public.hex()}")
        for line in result.details():
            print(f"  {line}")
    else:
        # podproto's reasons name what they are about, as describe() has just done.
        reason = result.reason or ""
        for prefix in ("signed profile: ", "profile: ", "podlet image: ", "podlet: "):
            if reason.startswith(prefix):
                reason = reason[len(prefix):]
                break
        print(f"FAIL {path}: {result.describe()}: {reason}")
    return 0 if result.ok else FAILED


def _cmd_provision(args: argparse.Namespace) -> int:
    """Signed profiles to many steamers at once (steamer_mfg.provision); exit 1 when
    any device or profile failed, 2 when the profiles folder is wrong."""
    import asyncio

    from steamer.devices import DeviceError, InputFileError, load_keys, sim_air
    from steamer_mfg import provision as prov
    try:
        profiles = prov.load_profiles(Path(args.profiles))
        keys = load_keys(args.keys)
        results = asyncio.run(prov.provision(args.devices, profiles, keys, air=sim_air(args.sim),
                                             jobs=args.jobs, scan_s=args.scan_timeout,
                                             pair_s=args.pair_timeout))
    except InputFileError as e:       # a profile, or the key file
        return fail("mfg provision", str(e), BAD_INPUT)
    except DeviceError as e:
        return fail("mfg provision", str(e))
    if args.json:
        _print_json([r.to_json() for r in results])
    else:
        print_table(prov.table(results))
    failed = sum(not r.ok for r in results)
    if failed:
        return fail("mfg provision", f"{failed} of {len(results)} devices failed")
    return 0


def _cmd_provision_key(args: argparse.Namespace) -> int:
    """The manufacturer public key into a real board over USB (steamer_mfg.trustkey);
    exit 1 when the board refuses or a step fails, 2 when the key given is wrong."""
    from steamer_mfg import trustkey, usb

    public = trustkey.public_key_from(args.pub, args.key)

    def progress(msg: str) -> None:
        print(f"steamer mfg provision-key: {msg}", file=sys.stderr, flush=True)

    try:
        result = trustkey.provision(args.port, public, force=args.force, progress=progress,
                                     timeout_s=args.timeout, wait_s=args.wait)
    except (trustkey.ProvisionError, usb.UsbError) as e:   # a board that refused, or mpremote
        return fail("mfg provision-key", str(e))
    except FileNotFoundError as e:     # mpremote missing
        return fail("mfg provision-key", str(e))
    if args.json:
        _print_json(result.to_json())
    elif result.action == "unchanged":
        print(f"{result.port} already holds key {result.public_hex} in {result.path}: "
              "nothing written")
    else:
        print(f"{result.port}: wrote key {result.public_hex} to {result.path} (32 bytes, "
              f"sha256 {result.sha256}), verified")
        if result.action == "replaced":
            print(f"replaced key {result.previous_hex} (--force)")
        print("the firmware reads the key at boot: reset the board to use it")
    return 0


def _cmd_adc_cal(args: argparse.Namespace) -> int:
    """The per-unit ADC calibration into a real board over USB (steamer_mfg.adccal);
    exit 1 when a channel is refused or a step fails."""
    from steamer_mfg import adccal

    def progress(msg: str) -> None:
        print(f"steamer mfg adc-cal: {msg}", file=sys.stderr, flush=True)

    ref = {"boiler": args.boiler_ohm, "outlet": args.outlet_ohm}
    try:
        result = adccal.calibrate(args.port, ref, reads=args.reads, progress=progress,
                                  timeout_s=args.timeout, wait_s=args.wait)
    except adccal.CalibrationError as e:     # a channel refused, or the board or mpremote
        return fail("mfg adc-cal", str(e))
    except FileNotFoundError as e:     # mpremote missing
        return fail("mfg adc-cal", str(e))
    if args.json:
        _print_json(result.to_json())
        return 0
    print_table([["channel", "plug", "read mV", "nominal mV", "gain ppm", "counts after",
                  "plug counts"]] +
                [[c.name, f"{c.ref_ohm} ohm", f"{c.mean_mv:.2f}", f"{c.want_mv:.2f}",
                  f"{c.gain_ppm:+d}", f"{c.read_counts:.1f}", str(c.want_counts)]
                 for c in result.channels])
    was = (f"replacing gains {result.previous}" if result.previous is not None
           else f"the board had none ({result.previous_problem})")
    print(f"{result.port}: calibration record written (commit {result.counter}, {was}), "
          "read back and verified; the firmware applies it at its next boot")
    return 0


# The mfg face's rows of steamer.terminal's error table: an output not written fails (1),
# a wrong input is BAD_INPUT (2), and an OS error names its file or says "file".
_ERRORS = ((_Failed, FAILED, None), (MfgError, BAD_INPUT, None),
           (OSError, FAILED, lambda e, _n, _a: f"{e.filename or 'file'}: {e.strerror or e}"))


_EXITS = "Exit 0 when done, 2 when an input is wrong (a one-line reason on stderr names it)"


def _usb_steps(p: argparse.ArgumentParser) -> None:
    """--timeout and --wait of the commands that talk to a board over USB."""
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="seconds each mpremote step may take (default: %(default)g)")
    p.add_argument("--wait", type=float, default=60.0, metavar="S",
                   help="seconds to wait for the maintenance boot when the board is running "
                        "the steamer firmware (default: %(default)g)")


def register(sub: argparse._SubParsersAction) -> None:
    from steamer.terminal import positive_int, positive_s

    def command(name: str, func, help_text: str, description: str, examples: str):
        p = sub.add_parser(name, help=help_text, description=textwrap.fill(description, 88),
                           epilog="Examples:\n" + examples,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=face_command(f"mfg {name}", _ERRORS)(func))
        return p

    p = command("keygen", _cmd_keygen, "make a manufacturer signing key",
                "Make a new Ed25519 manufacturer key in KEYFILE (PKCS#8 PEM, mode 0600) and "
                "print its public key in hex on stdout. An existing KEYFILE is never "
                "replaced without --force. The private key is never printed. " + _EXITS + ".",
                "  steamer mfg keygen --out keys/mfg.pem\n"
                "  steamer mfg keygen --out keys/mfg.pem --json")
    p.add_argument("-o", "--out", required=True, metavar="KEYFILE", help="where to write the key")
    p.add_argument("--force", action="store_true", help="replace an existing KEYFILE")
    p.add_argument("--json", action="store_true", help="print {key_file, public_hex} as JSON")

    p = command("pubkey", _cmd_pubkey, "print a key file's public key",
                "Print the public key (64 hex digits) of KEYFILE, the value devices are "
                "provisioned with. " + _EXITS + ".",
                "  steamer mfg pubkey keys/mfg.pem")
    p.add_argument("keyfile", metavar="KEYFILE")
    p.add_argument("--json", action="store_true", help="print {key_file, public_hex} as JSON")

    p = command("sign-profile", _cmd_sign_profile, "sign a treatment profile",
                "Check PROFILE.json against the hardware envelope (podproto.profile), then "
                "write its canonical bytes followed by the Ed25519 signature to OUT.bin "
                "(default: PROFILE.bin) and print its size and SHA-256 (what the app sends "
                "in profile_begin). Fields: " + ", ".join(PROFILE_FIELDS[:4]) + " (or "
                "outlet_target_mc), " + ", ".join(PROFILE_FIELDS[5:10]) + "; and for format "
                "2, a treatment course (any of these makes it one): " + ", ".join(
                    PROFILE_FIELDS[11:]) + " (pattern continuous, pulsed with bolus_ul and "
                "period_s, or ramped with ramp_s; warnings a list of {\"code\", \"text\"}; "
                "acknowledge true: the user must acknowledge them before the first session). "
                "Each bad value is named with what it may be. " + _EXITS + ".",
                "  steamer mfg sign-profile vitamin-c.json --key keys/mfg.pem -o vitamin-c.bin\n"
                "  steamer mfg sign-profile vitamin-c.json --key keys/mfg.pem --json\n\n"
                "vitamin-c.json:\n"
                '  {"podlet_type": 3, "version": 1, "name": "vitamin-c", "outlet_target_c": 45.0,\n'
                '   "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,\n'
                '   "max_day_ul": 5000, "min_interval_s": 14400}\n'
                "a course (format 2): add\n"
                '   "course_sessions": 4, "min_spacing_s": 518400, "recommended_spacing_s": 604800,\n'
                '   "maintenance_spacing_s": 15552000, "pattern": "pulsed", "bolus_ul": 20,\n'
                '   "period_s": 30, "warnings": [{"code": "pregnancy", "text": "Not when\n'
                '   pregnant or nursing."}], "acknowledge": true')
    p.add_argument("profile", metavar="PROFILE.json")
    p.add_argument("--key", required=True, metavar="KEYFILE", help="the manufacturer key")
    p.add_argument("-o", "--out", dest="output", metavar="OUT.bin", help="output file (default: PROFILE.bin)")
    p.add_argument("--json", action="store_true",
                   help="print {kind, file, size_bytes, sha256, public_hex, fields} as JSON")

    p = command("podlet-image", _cmd_podlet_image, "make a podlet ID chip's memory image",
                "Make the signed 136-byte image of a podlet's DS2431-style ID chip "
                "(podproto.podlet: 8-byte ROM ID with family 0x2D and CRC-8, then 128 bytes "
                "of memory) and write it to OUT.bin (default: podlet-SERIAL.bin). With --hex "
                "the output is one line of hex, on stdout unless -o is given. " + _EXITS + ".",
                "  steamer mfg podlet-image --serial 0000c0ffee01 --type 3 --capacity-ul 3000 \\\n"
                "      --expiry 2027-06-30 --lot L2611 --key keys/mfg.pem -o podlet.bin\n"
                "  steamer mfg podlet-image --serial 0000c0ffee02 --type 3 --capacity-ul 3000 \\\n"
                "      --expiry 2027-06-30 --lot L2611 --key keys/mfg.pem --hex > podlet.hex")
    p.add_argument("--serial", required=True, metavar="12HEX", help="48-bit serial, 12 hex digits")
    p.add_argument("--type", required=True, type=int, metavar="N", help="podlet type 0..255")
    p.add_argument("--capacity-ul", required=True, type=int, metavar="N", help="capacity in ul")
    p.add_argument("--expiry", required=True, metavar="YYYY-MM-DD", help="last usable day")
    p.add_argument("--lot", required=True, metavar="L", help="lot, 1..8 printable ASCII, no spaces")
    p.add_argument("--key", required=True, metavar="KEYFILE", help="the manufacturer key")
    p.add_argument("-o", "--out", dest="output", metavar="OUT.bin", help="output file")
    p.add_argument("--hex", action="store_true", help="write hex text instead of binary")
    p.add_argument("--json", action="store_true",
                   help="print {kind, file, size_bytes, sha256, public_hex, fields, rom_id_hex, "
                        "image_hex} as JSON")

    p = command("verify", _cmd_verify, "check a signed profile or podlet image",
                "Check FILE, a signed profile or a podlet image (binary, or the hex text of "
                "podlet-image --hex; the kind is told from its bytes and printed), with "
                "podproto's verifier, the steamer's own code: the signature under the given "
                "public key, the encoding, and the hardware envelope (profiles) or the ROM "
                "ID's CRC-8 and blank unused memory (podlets). Exit 0 when it verifies, 1 "
                "when it does not, 2 when an input is wrong.",
                "  steamer mfg verify vitamin-c.bin --pub $(steamer mfg pubkey keys/mfg.pem)\n"
                "  steamer mfg verify podlet.bin --key keys/mfg.pem --json")
    p.add_argument("file", metavar="FILE")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--pub", metavar="HEX", help="the public key, 64 hex digits")
    which.add_argument("--key", metavar="KEYFILE", help="take the public key from a key file")
    p.add_argument("--json", action="store_true",
                   help="print {ok, kind, reason, size_bytes, sha256, public_hex, fields, file}")

    p = command("provision-key", _cmd_provision_key,
                "give a real board the manufacturer public key, over USB",
                "Write the manufacturer public key to data/mfg.pub on the board at PORT with "
                "mpremote, over the USB cable (never over BLE), where the firmware reads it "
                "at boot: written to data/mfg.pub.new, checked by SHA-256 on the board, "
                "renamed over data/mfg.pub, checked again. The key is --pub (64 hex digits, "
                "or a file of them, of the 32 raw bytes or a PEM public key) or --key (a "
                "manufacturer key file: only its public half is sent; the private key never "
                "leaves it). A board that holds this key is left alone; one that holds "
                "another is refused unless --force. The simulator's development keys are "
                "refused. A board running the steamer firmware (whose watchdog would reset it "
                "mid-write) is asked for its maintenance boot first: the button held from "
                "0.5 s to 1.5 s after power-on. Exit 0 when the board holds the key, 1 when "
                "the board refused or a step failed, 2 when the key given is wrong. Simulated steamers get the "
                "development key into their flash from the sim driver instead.",
                "  steamer mfg provision-key --port /dev/ttyACM0 --key keys/mfg.pem\n"
                "  steamer mfg provision-key --port /dev/ttyACM0 --pub $(steamer mfg pubkey "
                "keys/mfg.pem)\n"
                "  steamer mfg provision-key --port /dev/ttyACM0 --pub mfg.pub.hex --force --json")
    p.add_argument("--port", required=True, help="the board's serial port, e.g. /dev/ttyACM0")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--pub", metavar="HEX|FILE", help="the public key, or a file holding it")
    which.add_argument("--key", metavar="KEYFILE", help="take the public key from a key file")
    p.add_argument("--force", action="store_true",
                   help="replace a different key the board already holds")
    _usb_steps(p)
    p.add_argument("--json", action="store_true",
                   help="print {port, path, public_hex, sha256, action, previous_hex, verified, "
                        "seconds} as JSON")


    from steamer_mfg.adccal import DEFAULT_READS, PLUG_OHM
    p = command("adc-cal", _cmd_adc_cal,
                "calibrate a real board's NTC channels with the calibration plug, over USB",
                "Measure and store this unit's correction of its NTC readings (an ESP32-C3's "
                "ADC reads volts: its eFuse calibration's residual, the 3.3 V rail's real "
                "voltage and the dividers' resistors differ from unit to unit; the firmware "
                "applies the record to every reading from its next boot). Before: the board "
                "in its maintenance boot (the button held from 0.5 s to 1.5 s after power-on; "
                "a board running the firmware is asked for it), and the calibration plug in "
                "place of the NTCs: a precision resistor (0.1 %) on each NTC connector, "
                "--boiler-ohm on the boiler's (its NTC at ~101 C) and --outlet-ohm on the "
                "outlet's (~43 C). Each channel's read_uv() is read --reads times on the "
                "board; its gain is what makes it read what a nominal unit reads with that "
                "resistor. A gain outside the firmware's bounds (+-4 %), a channel that "
                "reads nothing or whose reads spread, is refused with the channel and its "
                "numbers, and nothing is written: look for a broken sensor path, a wrong part "
                "or the wrong plug. Else the record is written (data/safe.a|b/adccal, two "
                "hashed copies), read back with the firmware's own loader and checked "
                "through it. Exit 0 when the board holds the verified record, 1 when a "
                "channel was refused or a step failed, 2 when an input is wrong.",
                "  steamer mfg adc-cal --port /dev/ttyACM0\n"
                "  steamer mfg adc-cal --port /dev/ttyACM0 --boiler-ohm 680 --outlet-ohm 4700 "
                "--reads 128 --json")
    p.add_argument("--port", required=True, help="the board's serial port, e.g. /dev/ttyACM0")
    p.add_argument("--boiler-ohm", type=positive_int, default=PLUG_OHM["boiler"], metavar="OHM",
                   help="the plug's resistor on the boiler NTC's connector "
                        "(default: %(default)s)")
    p.add_argument("--outlet-ohm", type=positive_int, default=PLUG_OHM["outlet"], metavar="OHM",
                   help="the plug's resistor on the outlet NTC's connector "
                        "(default: %(default)s)")
    p.add_argument("--reads", type=positive_int, default=DEFAULT_READS, metavar="N",
                   help="read_uv() readings per channel, averaged (default: %(default)s)")
    _usb_steps(p)
    p.add_argument("--json", action="store_true",
                   help="print {port, reads, channels: [{name, ref_ohm, mean_mv, spread_mv, "
                        "want_mv, gain_ppm, read_counts, want_counts}], counter, previous, "
                        "previous_problem, verified, seconds} as JSON")

    p = command("provision", _cmd_provision, "push signed profiles to many steamers at once",
                "Push every signed profile (*.bin) in DIR to each DEVICE (names or addresses "
                "as `steamer scan` shows them), --jobs at a time, and print a table of the "
                "result per device and profile. A device not paired with this computer is "
                "paired first (its pairing window must be open). A profile the device already "
                "has, the same bytes by SHA-256, counts as done; one it refuses (another "
                "profile at that version, a signature it does not trust) fails. Add --sim (or STEAMER_SIM=1) for simulated "
                "steamers. Exit 0 when every device got every profile, 1 when any failed, 2 "
                "when DIR holds no signed profile or a file that is not one.",
                "  steamer mfg provision line-1 line-2 line-3 --profiles profiles/\n"
                "  steamer mfg provision line-1 line-2 --profiles profiles/ --jobs 8 --json")
    p.add_argument("devices", nargs="+", metavar="DEVICE")
    p.add_argument("--profiles", required=True, metavar="DIR", help="folder of signed profiles")
    p.add_argument("--jobs", type=positive_int, default=4, metavar="N",
                   help="devices provisioned at once (default: %(default)s)")
    p.add_argument("--sim", action="store_true", help="use the simulated air, not Bluetooth")
    p.add_argument("--keys", metavar="FILE", help="pairing keys (default: as `steamer pair`)")
    p.add_argument("--scan-timeout", type=positive_s, default=5.0, metavar="S",
                   help="how long to look for the devices (default: %(default)g s)")
    p.add_argument("--pair-timeout", type=positive_s, default=10.0, metavar="S",
                   help="how long to wait for an unpaired device's pairing window "
                        "(default: %(default)g s)")
    p.add_argument("--json", action="store_true",
                   help="print [{device, address, ok, error, profiles}] as JSON")
