"""The subpackages' dependencies point one way: interfaces -> evaluation -> training ->
inference -> storage -> engine -> errors. A module may import its own package and the layers below it,
never one above or beside it."""

import ast
from pathlib import Path

import rnnac

PACKAGE = Path(rnnac.__path__[0])
LAYERS = {"errors": 0, "engine": 1, "storage": 2, "inference": 3, "training": 4, "evaluation": 5, "interfaces": 6}


def _part(module: str) -> str | None:
    """The layer a dotted name of rnnac belongs to ("engine" for rnnac.engine.bptt), None outside rnnac."""
    parts = module.split(".")
    return parts[1] if parts[0] == "rnnac" and len(parts) > 1 else None


def _imports(path: Path) -> set[str]:
    """Every rnnac module that the file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("rnnac.")}


def test_every_module_sits_in_a_layer():
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).parts
        if relative[0] in ("__init__.py", "__main__.py", "share"):
            continue
        assert relative[0].removesuffix(".py") in LAYERS, f"{path} is in no layer: add it to LAYERS or move it"


def test_dependencies_point_down():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).parts
        if relative[0] in ("__init__.py", "__main__.py", "share"):
            continue
        own = relative[0].removesuffix(".py")
        for name in _imports(path):
            other = _part(name)
            if other in (None, own) or other not in LAYERS:
                continue
            if LAYERS[other] >= LAYERS[own]:
                wrong.append(f"{'/'.join(relative)} ({own}) imports {name} ({other})")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(sorted(wrong))


def test_the_check_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from rnnac.interfaces import cli\n")
    assert {_part(name) for name in _imports(bad)} == {"interfaces"}
