"""podproto's constants are folded on MicroPython although `const` comes from
podproto.mpconst, not from micropython: the parser folds `NAME = const(int)` by the
called name (py/parse.c, fold_constants()), so an `_`-prefixed constant is no global
(imported under another name, `konst`, it would be one: checked by hand)."""
from podproto import link, profile


def test_private_constants_are_folded_away_not_globals():
    for mod, name in ((link, "_LAST"), (link, "_INDEX"), (link, "_DISCARD"),
                      (profile, "_FIXED_LEN")):
        assert name not in dir(mod), (mod, name)

