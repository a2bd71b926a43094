"""The layout's rules (README, Layout; ../shared/STYLE.md), checked on the source: one
package per product, each with a docstring and a line in README's layout table; no import
cycle; no module imports a CLI module but its own entry point; the host's packages never
import the tools'; tests own their drivers (none imports the benchmark); nobody reaches
another module's private members."""
from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS = {name: ROOT / d for name, d in
                PYPROJECT["tool"]["setuptools"]["package-dir"].items()}
HOST_PACKAGES = ("steamer", "steamer_mfg")
TOOL_PACKAGES = ("steamer_sim", "steamer_dev", "steamer_bench", "steamer_harness")
# What MicroPython puts on its path: the firmware, the boards, the protocol.
MP_ROOTS = [ROOT / "device", ROOT / "protocol"] + sorted(
    p for p in (ROOT / "boards").iterdir() if p.is_dir())
ENTRY_POINTS = {"steamer.cli.main", "steamer.cli.__main__"}
# Private names of the standard library and of CPython's objects that are public API
# despite the underscore (namedtuple's _replace/_asdict/_fields, sys._getframe, os._exit).
STDLIB_UNDERSCORED = {"_replace", "_asdict", "_fields", "_getframe", "_exit", "_make",
                      "_field_defaults", "_thread", "_SubParsersAction", "_ActionsContainer",
                      "_StoreAction", "_name_parser_map", "_actions", "_option_string_actions",
                      "_subparsers", "_group_actions", "_pytestfixturefunction"}


def _modules() -> dict[str, Path]:
    """Every module of ours by dotted name: the installed packages, and the firmware's and
    boards' modules as MicroPython imports them (fw.app, board, plant...)."""
    mods: dict[str, Path] = {}
    for name, d in PACKAGE_DIRS.items():
        for f in d.rglob("*.py"):
            rel = f.relative_to(d).with_suffix("").parts
            dotted = ".".join((name, *rel))
            mods[dotted.removesuffix(".__init__")] = f
    for root in MP_ROOTS:
        for f in root.rglob("*.py"):
            if "podproto" in f.parts:
                continue
            dotted = ".".join(f.relative_to(root).with_suffix("").parts)
            mods.setdefault(dotted.removesuffix(".__init__"), f)
    return mods


MODULES = _modules()


def _imports(path: Path, me: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m in MODULES and m != me}


GRAPH = {m: _imports(p, m) for m, p in MODULES.items()}


def _cycles() -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w.endswith("__init__") or MODULES[w].name == "__init__.py":
                continue    # a package's docstring-only __init__ imports nothing back
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for m in sorted(GRAPH):
        if m not in index:
            visit(m)
    return found


def test_the_import_graph_has_no_cycle():
    assert _cycles() == []


def test_the_graph_is_read_from_the_real_tree():
    # A guard of the checks above: they would pass on a graph they failed to read.
    assert "steamer.cli.main" in MODULES and "fw.app" in MODULES
    assert "fw.config" in GRAPH["fw.app"]
    assert len(MODULES) > 60


def _is_cli(m: str) -> bool:
    return m.split(".")[-1] == "cli" or ".cli." in f".{m}." and m.split(".")[0] in PACKAGE_DIRS


def test_no_module_imports_a_cli_module_but_its_entry_point():
    wrong = {m: sorted(i for i in GRAPH[m] if _is_cli(i) and not _is_cli(m.rpartition(".")[0]))
             for m in GRAPH if m not in ENTRY_POINTS}
    # A face may import its own package's pieces (steamer.cli.consumer -> steamer.cli.x)
    # only through the entry point: faces import libraries.
    wrong = {m: v for m, v in wrong.items() if v}
    faces = {m: sorted(i for i in GRAPH[m] if _is_cli(i))
             for m in GRAPH if _is_cli(m) and m not in ENTRY_POINTS}
    assert wrong == {} and {m: v for m, v in faces.items() if v} == {}


def test_the_hosts_packages_never_import_the_tools():
    wrong = {m: sorted(i for i in GRAPH[m] if i.split(".")[0] in TOOL_PACKAGES)
             for m in GRAPH if m.split(".")[0] in HOST_PACKAGES}
    assert {m: v for m, v in wrong.items() if v} == {}


def test_no_test_imports_the_benchmark():
    wrong = []
    for f in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("steamer_bench"):
                wrong.append(f"{f.relative_to(ROOT)}:{node.lineno}")
            elif isinstance(node, ast.Import) and any(
                    a.name.startswith("steamer_bench") for a in node.names):
                wrong.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert wrong == []


@pytest.mark.parametrize("package", sorted(PACKAGE_DIRS))
def test_each_package_says_what_lives_there_and_is_in_the_readme(package):
    init = PACKAGE_DIRS[package] / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text()))
    assert doc and len(doc) > 40, f"{init} has no docstring saying what lives there"
    folder = PACKAGE_DIRS[package].relative_to(ROOT).as_posix()
    table = re.findall(r"^\| `([^`]+)/?` \|", (ROOT / "README.md").read_text(), re.M)
    assert folder in [t.rstrip("/") for t in table], f"README's layout table has no {folder}/"


def _private_uses(path: Path) -> list[str]:
    """`x._name` where x is not self or cls and _name is not the file's own (a module's own
    private names are its business, on any of its objects; another module's are not)."""
    tree = ast.parse(path.read_text(), str(path))
    own = {n.name for n in ast.walk(tree)
           if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    own |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.ctx, ast.Store) and isinstance(n.value, ast.Name)
            and n.value.id in ("self", "cls")}
    own |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__") and node.attr not in STDLIB_UNDERSCORED
                and node.attr not in own):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) \
                    and base.func.id == "super":
                continue
            out.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    return out


def test_nobody_reaches_another_modules_private_members():
    files = [p for p in MODULES.values()] + list((ROOT / "tests").rglob("*.py"))
    uses = [u for f in sorted(set(files)) for u in _private_uses(f)]
    assert uses == []
