"""README's set-up, as a new user follows it: the shell line it gives before any
`steamer ...` example puts the `steamer` command on PATH."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_says_how_steamer_gets_on_path_before_using_it() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## ")               # the first section: set-up
    setup = text[start:text.index("\n## ", start + 1)]
    line = next((m.group(1) for m in re.finditer(r"^    (.*activate.*?)\s*(#.*)?$", setup,
                                                  re.MULTILINE)), None)
    assert line, "no shell line in the README's first section puts `steamer` on PATH"
    # A shell without the venv on PATH, in the repository, runs the README's line
    # (less its `make venv`: the venv exists) and then the command.
    line = line.replace("make venv && ", "")
    p = subprocess.run(["bash", "-c", f"{line} && steamer --help"], cwd=ROOT,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
                       text=True, capture_output=True, timeout=60)
    assert p.returncode == 0 and "usage: steamer" in p.stdout, p.stderr
