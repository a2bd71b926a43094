"""`const`, for podproto's modules and the firmware's modules that also run on CPython:
MicroPython's own, else the identity.

Import it by that very name (`from podproto.mpconst import const`, no alias): the
MicroPython parser folds `NAME = const(int)` by the called name alone, wherever the
name came from (py/parse.c, fold_constants(): the `id = const(value)` branch matches
MP_PARSE_NODE_LEAF_ARG(...) == MP_QSTR_const), so a folded constant stays a literal in
the bytecode and an `_`-prefixed one takes no global. Checked on the unix port:
`_A = const(1234)` imported this way leaves no `_A` global, as with micropython's const.
"""
try:
    from micropython import const  # type: ignore  # CPython defines it below
except ImportError:  # CPython
    def const(x):
        return x
