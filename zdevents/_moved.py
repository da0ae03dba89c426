"""Import paths of the 0.1 layout, kept working for one release with a DeprecationWarning.

``import zdevents.sla`` (or ``from zdevents.charts import plot_breach_rates``) still works and
gives the module at its new place, :mod:`zdevents.analysis.sla`; the warning names that place.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

#: Old module -> its place in the current layout.
MOVED: dict[str, str] = {
    "zdevents.cache": "zdevents.store.parquet",
    "zdevents.client": "zdevents.export.client",
    "zdevents.normalize": "zdevents.export.parse",
    "zdevents.ingest": "zdevents.export.fetch",
    "zdevents.progress": "zdevents.export.progress",
    "zdevents.names": "zdevents.export.names",
    "zdevents.frame": "zdevents.read.frame",
    "zdevents.scan": "zdevents.read.scan",
    "zdevents.exports": "zdevents.read.exports",
    "zdevents.sla": "zdevents.analysis.sla",
    "zdevents.tickets": "zdevents.analysis.tickets",
    "zdevents.insights": "zdevents.analysis.insights",
    "zdevents.takeaways": "zdevents.viz.takeaways",
    "zdevents.charts": "zdevents.viz.charts",
    "zdevents.insight_charts": "zdevents.viz.insight_charts",
    "zdevents.report": "zdevents.viz.report",
    "zdevents.report_insights": "zdevents.viz.report_insights",
    "zdevents.deck": "zdevents.viz.deck",
}

#: Public names that did not move with their module: old module -> {name: where it is now}.
MOVED_NAMES: dict[str, dict[str, str]] = {
    "zdevents.deck": {"build_deck": "zdevents.insight_pipeline"},
}


class _Split(ModuleType):
    """An old module whose public names now live in more than one module."""

    def __getattr__(self, name: str) -> object:
        home = MOVED_NAMES[self.__name__].get(name, MOVED[self.__name__])
        return getattr(importlib.import_module(home), name)

    def __dir__(self) -> list[str]:
        return sorted(
            set(dir(importlib.import_module(MOVED[self.__name__])))
            | set(MOVED_NAMES[self.__name__])
        )


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module name and loads it as the module at its new place."""

    def __init__(self) -> None:
        self._specs: dict[str, importlib.machinery.ModuleSpec] = {}

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec) -> ModuleType:
        new = MOVED[spec.name]
        elsewhere = "".join(
            f"; {name} is now in {home}" for name, home in MOVED_NAMES.get(spec.name, {}).items()
        )
        warnings.warn(
            f"{spec.name} moved to {new}; the old path stops working in the next release"
            + elsewhere,
            DeprecationWarning,
            stacklevel=2,  # the import machinery's own frames are skipped by warnings
        )
        if spec.name in MOVED_NAMES:
            return _Split(spec.name)
        module = importlib.import_module(new)
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The module ran when it was imported at its new place: give it back its own spec.

        The import system has just set ``__spec__`` to the old name's, which would make
        the module's relative imports resolve against the old package.
        """
        if not isinstance(module, _Split):
            module.__spec__ = self._specs.pop(module.__spec__.name)


class _Package(ModuleType):
    """The ``zdevents`` package, which keeps its public functions when an old path loads.

    After ``import zdevents.scan`` the import system sets the attribute ``scan`` of the
    package to the loaded module; without this, ``zd.scan`` would stop being the function.
    """

    def __setattr__(self, name: str, value: object) -> None:
        current = self.__dict__.get(name)
        if (
            isinstance(value, ModuleType)
            and f"{self.__name__}.{name}" in MOVED
            and current is not None
            and not isinstance(current, ModuleType)
        ):
            return
        super().__setattr__(name, value)


def install(package: ModuleType) -> None:
    """Put the alias finder on ``sys.meta_path`` once, and guard ``package``'s names."""
    package.__class__ = _Package
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
