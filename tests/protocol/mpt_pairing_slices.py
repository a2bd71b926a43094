"""The device's side of pairing in slices (podproto.pairing.respond_steps) on
MicroPython: every slice's work is bounded, counted as mpt_ed25519_slices.py counts it
(the units announced, and independently the bytes each slice allocates), and the
result is RFC 7748's."""
import gc

from podproto import gf25519, pairing

from mpt_ed25519_slices import BYTES_PER_MUL, BYTES_SLACK, _slices

# RFC 7748 section 6.1: Alice's private key and public key, Bob's public key, and the
# secret they share.
ALICE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PUB = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB_PUB = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"


def _bounded(log, allocs, budget):
    assert len(log) == len(allocs), (len(log), len(allocs))
    for units, got in zip(log, allocs):
        assert units <= budget, (units, budget)
        assert got <= BYTES_PER_MUL * units + BYTES_SLACK, (units, got)


def test_every_slice_of_the_device_side_is_within_the_budget_and_the_result_is_rfc_7748():
    log = []
    got, allocs = _slices(pairing.respond_steps(
        bytes.fromhex(BOB_PUB), bytes(16), bytes(16), log=log, priv=bytes.fromhex(ALICE)))
    dev_pub, key = got
    assert dev_pub == bytes.fromhex(ALICE_PUB)
    assert key == pairing.pair_key(bytes.fromhex(SHARED), bytes(16), bytes(16))
    _bounded(log, allocs, gf25519.SLICE_MULS)
    # Two ladders of 255 steps and two inversions: ~5,600 units, in ~90 full slices.
    assert 5400 <= sum(log) <= 5800, sum(log)
    assert min(log[:-1]) > gf25519.SLICE_MULS - pairing.LADDER_STEP_MULS, log
    print("pairing: %d slices, %d units, max %d units, %d bytes" % (
        len(log), sum(log), max(log), max(allocs)))


def test_a_smaller_budget_is_kept_and_gives_the_same_result():
    for budget in (pairing.LADDER_STEP_MULS, 40):
        log = []
        got, allocs = _slices(pairing.respond_steps(
            bytes.fromhex(BOB_PUB), bytes(16), bytes(16), budget, log, bytes.fromhex(ALICE)))
        assert got[0] == bytes.fromhex(ALICE_PUB)
        _bounded(log, allocs, budget)


def test_a_low_order_host_key_is_refused_after_bounded_work():
    log = []
    got, allocs = _slices(pairing.respond_steps(bytes(32), bytes(16), bytes(16), log=log))
    assert got is None
    _bounded(log, allocs, gf25519.SLICE_MULS)


def test_the_whole_x25519_matches_the_slices():
    assert pairing.x25519(bytes.fromhex(ALICE), bytes.fromhex(BOB_PUB)) == bytes.fromhex(SHARED)
    gc.collect()
