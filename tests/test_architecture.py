"""The package's shape, read from its source with ``ast``: who imports whom, and sizes.

Three rules (the README's Architecture section explains them):

- no module imports a private name (``_x``) of another zdevents module, nor reaches one
  through a module it imported (``charts._order_key``);
- imports go down the floors only; imports inside functions count too;
- no module over 500 lines, no class over 400.

Each broken rule is one line of the failure, naming the file and the rule.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "zdevents"

MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 400

#: The parts of the package: each a subpackage or top-level module (its name without .py).
PARTS = {
    "top": {"__init__", "__main__", "cli", "pipeline", "insight_pipeline", "jobs", "testing"},
    "read": {"read"},
    "sample": {"sample"},
    "export": {"export"},
    "store": {"store"},
    "viz": {"viz"},
    "analysis": {"analysis"},
    "bottom": {"schema", "config", "errors", "dates", "streams", "files", "version", "_moved"},
}

#: The parts each part may import besides itself. The floors, top to bottom:
#: top -> read, sample -> export -> store -> bottom, and beside them viz -> analysis -> bottom.
#: Only the top imports sample; analysis and viz never import read, export or store.
MAY_IMPORT = {
    "top": set(PARTS),
    "read": {"export", "store", "bottom"},
    "sample": {"export", "store", "bottom"},
    "export": {"store", "bottom"},
    "store": {"bottom"},
    "viz": {"analysis", "bottom"},
    "analysis": {"bottom"},
    "bottom": set(),
}


def is_private(name: str) -> bool:
    """``_x`` is private; ``__version__`` and ``__all__`` are not."""
    return name.startswith("_") and not name.endswith("__")


def part_of(module: str) -> str | None:
    """The part (a key of ``PARTS``) of a ``zdevents...`` module, None if it has none."""
    names = module.split(".")
    first = names[1] if len(names) > 1 else "__init__"
    return next((part for part, members in PARTS.items() if first in members), None)


class Module:
    """One source file of the package, with what it imports."""

    def __init__(self, path: Path, package: Path) -> None:
        self.path = path
        self.root = package.parent
        self.where = path.relative_to(self.root).as_posix()
        names = path.relative_to(self.root).with_suffix("").parts
        self.name = ".".join(names[:-1] if names[-1] == "__init__" else names)
        self.package = self.name if path.name == "__init__.py" else self.name.rpartition(".")[0]
        self.text = path.read_text(encoding="utf-8")
        self.nodes = list(ast.walk(ast.parse(self.text)))  # every node, nested ones too

    def is_module(self, dotted: str) -> bool:
        """True when ``dotted`` names a module or package of zdevents."""
        path = self.root.joinpath(*dotted.split("."))
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    def imports(self) -> list[tuple[str, str | None, str]]:
        """Each ``(module imported, name taken from it or None, name bound here)``."""
        found = []
        for node in self.nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "zdevents":
                        bound = alias.asname or alias.name.split(".")[0]
                        found.append((alias.name, None, bound))
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:  # relative: resolved against this module's package
                    base = self.package.split(".")
                    base = base[: len(base) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                if source.split(".")[0] != "zdevents":
                    continue
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    if self.is_module(submodule):  # `from . import charts`: a module
                        found.append((submodule, None, alias.asname or alias.name))
                    else:
                        found.append((source, alias.name, alias.asname or alias.name))
        return found

    def violations(self) -> set[str]:
        part = part_of(self.name)
        if part is None:
            return {f"{self.where}: on no floor (add it to PARTS in tests/test_architecture.py)"}
        found = set()
        modules = {}  # name bound here -> the zdevents module it stands for
        for source, name, bound in self.imports():
            private = [n for n in [*source.split("."), name or ""] if is_private(n)]
            if private and not (self.name == "zdevents" and source == "zdevents._moved"):
                what = f"{name} from" if name and is_private(name) else "module"
                found.add(f"{self.where}: imports private {what} {source}")
            other = part_of(source)
            if other is not None and other != part and other not in MAY_IMPORT[part]:
                found.add(f"{self.where}: {part} imports {other} ({source})")
            if name is None:
                modules[bound] = source
        for node in self.nodes:
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and is_private(node.attr)
            ):
                found.add(f"{self.where}: uses private {node.attr} of {modules[node.value.id]}")
        if len(self.text.splitlines()) > MAX_MODULE_LINES:
            found.add(f"{self.where}: over {MAX_MODULE_LINES} lines")
        for node in self.nodes:
            if isinstance(node, ast.ClassDef):
                if node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                    found.add(f"{self.where}: class {node.name} over {MAX_CLASS_LINES} lines")
        return found


def violations(package: Path = PACKAGE) -> set[str]:
    """Every rule broken in the package, one line each."""
    return set().union(*(Module(p, package).violations() for p in package.rglob("*.py")))


@functools.cache
def found() -> frozenset[str]:
    """:func:`violations` of zdevents/, read once for both tests."""
    return frozenset(violations())


def test_the_package_keeps_its_shape():
    broken = found()
    assert not broken, "violations of the package's shape:\n" + "\n".join(sorted(broken))


def test_the_checker_on_a_small_package(tmp_path):
    root = tmp_path / "zdevents"
    (root / "store").mkdir(parents=True)
    (root / "viz").mkdir()
    files = {
        "__init__.py": "from . import _moved\nfrom .store import open_store\n",
        "_moved.py": "",
        "config.py": "",
        "extra.py": "",
        "store/__init__.py": "from .. import config\n\ndef open_store(): ...\n",
        "store/rows.py": "def _merge(): ...\n" + "x = 1\n" * 500,
        "store/cache.py": (
            "import zdevents.store.rows as rows\n"
            "from ..config import _secret\n"
            "from .rows import _merge\n"
            "from zdevents import _moved\n"
            "def load():\n"
            "    from ..read.frame import load_frame\n"
            "    return rows._merge, rows.x\n"
        ),
        "viz/charts.py": "class Chart:\n" + "    x = 1\n" * 400,
    }
    for name, text in files.items():
        (root / name).write_text(text)
    assert violations(root) == {
        "zdevents/extra.py: on no floor (add it to PARTS in tests/test_architecture.py)",
        "zdevents/store/cache.py: imports private _secret from zdevents.config",
        "zdevents/store/cache.py: imports private _merge from zdevents.store.rows",
        "zdevents/store/cache.py: imports private module zdevents._moved",
        "zdevents/store/cache.py: store imports read (zdevents.read.frame)",
        "zdevents/store/cache.py: uses private _merge of zdevents.store.rows",
        "zdevents/store/rows.py: over 500 lines",
        "zdevents/viz/charts.py: class Chart over 400 lines",
    }
