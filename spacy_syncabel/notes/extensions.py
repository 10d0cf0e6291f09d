"""Extension attributes other components set (negspacy's ``span._.negex``, medspaCy's
``span._.is_negated``, ``doc._.x``), copied into the records of ``link`` as JSON.

A value JSON can hold is written as it is (``None``, booleans, numbers, strings; lists and
tuples as lists, dicts with string keys; nested); anything else (an object, a set, a span,
NaN or infinity) is written as ``str(value)``, so one component's odd value never stops a run.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span

from ..errors import Errors


def parse_attrs(option: Optional[str]) -> Tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")`` (empty names dropped, order kept, no repeats)."""
    names = [name.strip() for name in (option or "").split(",")]
    return tuple(dict.fromkeys(name for name in names if name))


def check_registered(span_attrs: Sequence[str], doc_attrs: Sequence[str], pipeline: Any) -> None:
    """E451 for an attribute no component of the loaded pipeline registered."""
    for kind, cls, names, option in (("Span", Span, span_attrs, "--span-attrs"),
                                     ("Doc", Doc, doc_attrs, "--doc-attrs")):
        missing = [name for name in names if not cls.has_extension(name)]
        if missing:
            known = sorted(getattr(cls, "_extensions", {}) or ())
            raise ValueError(Errors.E451.format(kind=kind, names=missing, path=pipeline,
                                                known=known, option=option))


def check_registered_without_linkers(span_attrs: Sequence[str], doc_attrs: Sequence[str],
                                     pipeline: Any) -> None:
    """:func:`check_registered` for a pipeline other processes link with (``link --ray``): it
    is loaded here without its linkers (their model is the costly part), which leaves every
    other component to register its attributes, and the linker's own are added by name."""
    import spacy
    from spacy.util import load_config

    from ..pipeline import register_extensions
    from ..pipes import LINKER_FACTORY

    config = load_config(Path(pipeline) / "config.cfg")
    linkers = [name for name, block in config.get("components", {}).items()
               if isinstance(block, dict) and block.get("factory") == LINKER_FACTORY]
    spacy.load(pipeline, exclude=linkers)
    register_extensions()
    check_registered(span_attrs, doc_attrs, pipeline)


def jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it (see the module's docstring)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: jsonable(v) for k, v in value.items()}
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        return jsonable(item())
    return str(value)


def extension_values(obj: Any, names: Sequence[str]) -> Dict[str, Any]:
    """``{name: obj._.name}`` for a span or doc, as JSON."""
    return {name: jsonable(getattr(obj._, name)) for name in names}
