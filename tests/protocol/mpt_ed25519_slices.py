"""Ed25519 verification in slices (podproto.ed25519.verify_steps) on MicroPython: the
work of every slice is bounded, counted two ways. The units the verifier announces
(field multiplications, SHA-512 rounds at SHA_ROUND_MULS) stay within the budget; and,
counted independently, the bytes each slice allocates (every big-int operation
allocates its result) stay within what that many units allocate, so work the
accounting missed would show."""
import gc

from podproto import ed25519
from podproto.sha512 import sha512, sha512_steps

# RFC 8032 section 7.1, tests 1-3: (public key, message, signature).
VECTORS = [
    ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]
# Bytes one unit of work allocates at most on the unix port: ~900 measured for a field
# multiplication (its 512-bit product and the two reductions' temporaries), ~500 for
# a SHA-512 round's share.
BYTES_PER_MUL = 1200
# A slice's own bookkeeping (the first one copies its inputs), beyond its units.
BYTES_SLACK = 4096


def _vector(i):
    pub, msg, sig = VECTORS[i]
    return bytes.fromhex(pub), bytes.fromhex(msg), bytes.fromhex(sig)


def _slices(steps):
    """Runs a verify_steps generator a slice at a time: (result, bytes allocated by
    each slice)."""
    allocs = []
    while True:
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        try:
            next(steps)
            done = None
        except StopIteration as stop:
            done = stop
        allocs.append(gc.mem_alloc() - before)
        gc.enable()
        if done is not None:
            return done.value, allocs


def _check_bounded(log, allocs, budget):
    assert len(log) == len(allocs), (len(log), len(allocs))
    for units, got in zip(log, allocs):
        assert units <= budget, (units, budget)
        assert got <= BYTES_PER_MUL * units + BYTES_SLACK, (units, got)


def test_every_slice_of_a_good_signature_is_within_the_budget():
    for i in range(len(VECTORS)):
        pub, msg, sig = _vector(i)
        log = []
        ok, allocs = _slices(ed25519.verify_steps(pub, msg, sig, log=log))
        assert ok
        _check_bounded(log, allocs, ed25519.SLICE_MULS)
        # A verify is 4,400-5,000 units, in slices all nearly full but the last.
        assert 4400 <= sum(log) <= 5000, sum(log)
        assert min(log[:-1]) > ed25519.SLICE_MULS - ed25519.PIECE_MULS, log
        print("vector %d: %d slices, %d units, max %d units, %d bytes" % (
            i + 1, len(log), sum(log), max(log), max(allocs)))


def test_bad_signatures_are_bounded_too_and_fail():
    pub, msg, sig = _vector(1)
    cases = [
        (pub, msg + b"x", sig),                            # another message
        (pub, msg, sig[:40] + bytes([sig[40] ^ 1]) + sig[41:]),   # S changed
        (pub, msg, sig[:5] + bytes([sig[5] ^ 1]) + sig[6:]),      # R changed
        (_vector(0)[0], msg, sig),                         # another key
    ]
    for pub_, msg_, sig_ in cases:
        log = []
        ok, allocs = _slices(ed25519.verify_steps(pub_, msg_, sig_, log=log))
        assert ok is False
        _check_bounded(log, allocs, ed25519.SLICE_MULS)
        assert sum(log) > 4000


def test_what_fails_early_costs_little():
    pub, msg, sig = _vector(1)
    big_s = sig[:32] + b"\xff" * 32                        # S >= L
    y_too_big = b"\xff" * 31 + b"\x7f"                     # y >= p: non-canonical
    not_on_curve = (2).to_bytes(32, "little")              # y = 2 has no x
    for pub_, sig_, units in ((pub, big_s, 0), (y_too_big, sig, 0), (pub[:31], sig, 0),
                              (pub, sig[:63], 0), (not_on_curve, sig, 300)):
        log = []
        ok, allocs = _slices(ed25519.verify_steps(pub_, msg, sig_, log=log))
        assert ok is False
        _check_bounded(log, allocs, ed25519.SLICE_MULS)
        # Nothing, or the square root of the decoding: no hash, no multiplication.
        assert sum(log) <= units, (sum(log), units)


def test_any_budget_down_to_the_largest_piece_is_kept_and_gives_the_same_work():
    pub, msg, sig = _vector(2)
    totals = []
    for budget in (ed25519.PIECE_MULS, 40, 300):
        log = []
        ok, allocs = _slices(ed25519.verify_steps(pub, msg, sig, budget, log))
        assert ok
        _check_bounded(log, allocs, budget)
        totals.append(sum(log))
    assert totals[0] == totals[1] == totals[2], totals


def test_sha512_steps_are_small_and_give_the_digest():
    data = b"abc" * 50                                     # two blocks
    steps = sha512_steps(data)
    pieces = []
    while True:
        try:
            pieces.append(next(steps))
        except StopIteration as stop:
            digest = stop.value
            break
    assert max(pieces) <= 5 and sum(pieces) == 2 * (64 + 80), (max(pieces), sum(pieces))
    assert digest == sha512(data)
    assert sha512(b"abc").hex() == (
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
