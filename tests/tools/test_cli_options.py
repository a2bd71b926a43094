"""Options every `steamer` command spells the same way."""
from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

from steamer.cli.main import build_parser


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
              ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for word, child in action.choices.items():
                yield from _commands(child, path + (word,))


def test_an_output_file_or_folder_is_o_or_out_in_every_command() -> None:
    seen = []
    for words, parser in _commands(build_parser()):
        for action in parser._actions:
            # --out, --output, --out-dir, --outdir ... name an output; --timeout and
            # --outlet-ohm (the outlet sensor's) do not.
            flags = [f for f in action.option_strings
                     if re.match(r"--(out|output)(\b|[-_]|dir)", f)]
            if flags or "-o" in action.option_strings:
                seen.append(" ".join(words))
                assert action.option_strings == ["-o", "--out"], (words, action.option_strings)
    # The commands that write a file: each one found, so the check above ran on them.
    for command in ("dev build", "dev bench", "mfg keygen", "mfg sign-profile",
                    "mfg podlet-image", "sessions export", "plot"):
        assert command in seen, command
