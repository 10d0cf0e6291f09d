"""KB formats, one module each: every module of this package registers its
:class:`~._common.KBFormat` (name, detector, reader) in one table when imported.

Adding a format is adding a module here that calls ``register(KBFormat(...))``:
:func:`~spacy_syncabel.kb.read_file` finds it by name (``format=``) or by its detector.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import List, Optional

from ._common import TABLE, KBFormat

# every format module registers itself (modules starting with "_" are shared code)
for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def formats() -> List[KBFormat]:
    """The registered formats in detection order."""
    return sorted(TABLE.values(), key=lambda f: (f.rank, f.name))


#: the names ``read_file(format=...)`` takes, in detection order
FORMATS: List[str] = [f.name for f in formats()]


def get_format(name: str) -> Optional[KBFormat]:
    """The format registered as ``name``, or None."""
    return TABLE.get(name)


def detect_format(path: Path) -> Optional[str]:
    """The name of the first format (in detection order) whose detector accepts ``path``."""
    for fmt in formats():
        if fmt.detect(path):
            return fmt.name
    return None


__all__ = ["KBFormat", "FORMATS", "formats", "get_format", "detect_format"]
