"""The firmware's classes and the real boards' stay plain: no property, no descriptor, no
__getattr__/__setattr__. On MicroPython one such member anywhere in a class or its bases
sets MP_TYPE_FLAG_HAS_SPECIAL_ACCESSORS on it (py/objtype.c, mp_obj_new_type and
type_new's base_flags), and from then on every attribute store on its instances first
looks the name up through the class and all its bases (mp_obj_instance_store_attr).
App's property `steps` did that to every `self.x = ...` of the control step: with App
split over two base classes the step took 16 us instead of 10 on the unix port
(`steamer dev bench --parts control`)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAIN_DIRS = [ROOT / "device" / "fw", ROOT / "boards" / "common", ROOT / "boards" / "esp32c3",
              ROOT / "boards" / "picow"]
SPECIAL_METHODS = {"__getattr__", "__setattr__", "__delattr__", "__get__", "__set__",
                   "__delete__"}
SPECIAL_DECORATORS = {"property", "setter", "getter", "deleter"}


def special_members(source: str) -> list[str]:
    """Names of the members of source's classes that make MicroPython's stores slow."""
    found = []
    for cls in (n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef)):
        for item in cls.body:
            if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            names = {d.id if isinstance(d, ast.Name) else d.attr
                     for d in item.decorator_list if isinstance(d, (ast.Name, ast.Attribute))}
            if item.name in SPECIAL_METHODS or names & SPECIAL_DECORATORS:
                found.append(f"{cls.name}.{item.name}")
    return found


def test_the_check_finds_a_property():
    assert special_members("class A:\n    @property\n    def x(self):\n        return 1\n") \
        == ["A.x"]
    assert special_members("class B:\n    def __setattr__(self, k, v):\n        pass\n") \
        == ["B.__setattr__"]
    assert special_members("class C:\n    def x(self):\n        return 1\n") == []


@pytest.mark.parametrize("path", sorted(p for d in PLAIN_DIRS for p in d.glob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_firmware_and_board_classes_have_no_special_accessors(path):
    assert special_members(path.read_text()) == [], (
        f"{path.relative_to(ROOT)}: a property or descriptor makes every attribute store on "
        "the class's instances slower on MicroPython; use a method")
