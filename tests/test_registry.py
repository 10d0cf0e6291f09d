"""Every registered function and factory of the package has its entry point in pyproject.toml,
and every entry point there names a registered function of that name (both ways).

The decorators register names when their module is imported; entry points are what spaCy finds
without importing the package (``spacy.load`` of a saved pipeline, configs resolved from the
command line). pyproject.toml is read directly, not the installed metadata, which only changes on
reinstall."""
import importlib
import pkgutil
from pathlib import Path
from typing import Dict, Tuple

import catalogue
import pytest
from spacy.util import registry

import spacy_syncabel

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    tomllib = pytest.importorskip("tomli")

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PACKAGE = spacy_syncabel.__name__
#: entry-point group of a registry whose catalogue namespace differs from its group name
GROUPS = {"factories": "spacy_factories"}


def _import_all_modules() -> None:
    """Import every module of the package, so that every decorator has run."""
    for info in pkgutil.walk_packages(spacy_syncabel.__path__, PACKAGE + "."):
        if info.name.rsplit(".", 1)[-1] != "__main__":  # runs the CLI
            importlib.import_module(info.name)


def _registered() -> Dict[Tuple[str, str], object]:
    """(entry-point group, name) -> function, for every function of the package registered by a
    decorator (``@registry.X(...)``, ``@Language.factory``); never from installed entry points."""
    _import_all_modules()
    out = {}
    for reg_name in registry.get_registry_names():
        reg = getattr(registry, reg_name)
        group = GROUPS.get(reg_name, "_".join(reg.namespace))
        # a Registry without entry points reads only what decorators registered
        for name, func in catalogue.Registry(reg.namespace).get_all().items():
            if getattr(func, "__module__", "").split(".")[0] == PACKAGE:
                out[(group, name)] = func
    return out


def _entry_points() -> Dict[Tuple[str, str], str]:
    """(group, name) -> "module:function" of pyproject.toml's spaCy and thinc entry points."""
    groups = tomllib.loads(PYPROJECT.read_text(encoding="utf8"))["project"]["entry-points"]
    return {(group, name): value for group, entries in groups.items()
            if group.startswith(("spacy_", "thinc_")) for name, value in entries.items()}


def _resolve(value: str):
    module, _, attr = value.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.fixture(scope="module")
def registered():
    return _registered()


def test_registered_names_follow_the_convention(registered):
    # the decorators found something, and the misc names read spacy_syncabel.<Thing>.vN
    assert ("spacy_factories", "syncabel_linker") in registered
    assert ("spacy_misc", "spacy_syncabel.KBFromFile.v1") in registered
    for group, name in registered:
        if group != "spacy_factories":
            prefix, thing, version = name.split(".")
            assert prefix == PACKAGE and thing and version[0] == "v", name


def test_every_registered_function_has_its_entry_point(registered):
    entry_points = _entry_points()
    missing = sorted(f"[project.entry-points.{g}] {n!r}" for g, n in registered
                     if (g, n) not in entry_points)
    assert not missing, "registered but without an entry point: " + ", ".join(missing)
    wrong = {f"{g} {n}": (entry_points[g, n], f"{f.__module__}:{f.__qualname__}")
             for (g, n), f in registered.items()
             if entry_points[g, n] != f"{f.__module__}:{f.__qualname__}"}
    assert not wrong, f"entry points naming another function than the registered one: {wrong}"


def test_every_entry_point_names_a_registered_function(registered):
    entry_points = _entry_points()
    assert entry_points
    unregistered = sorted(f"{g} {n!r} = {v!r}" for (g, n), v in entry_points.items()
                          if (g, n) not in registered)
    assert not unregistered, "entry points of no registered name: " + ", ".join(unregistered)
    other = sorted(f"{g} {n!r} = {v!r}" for (g, n), v in entry_points.items()
                   if _resolve(v) is not registered[g, n])
    assert not other, "entry points resolving to another object: " + ", ".join(other)
