"""The package's components in an ``nlp`` object, found by type without importing them.

Training, evaluation and the commands look a linker up in a loaded pipeline; they sit below
the spaCy component in the layers (docs/architecture.md), so they never import its module.
A pipeline holding a linker has imported that module already: the type is read from
``sys.modules``, and with the module not imported no component can be a linker.
"""
from __future__ import annotations

import sys
from typing import Any, List

from spacy.language import Language

from .errors import Errors

#: the factory name of the linker component (``nlp.add_pipe("syncabel_linker")``)
LINKER_FACTORY = "syncabel_linker"
#: the module defining :class:`SynCABELLinker` (read from ``sys.modules``, never imported here)
COMPONENT_MODULE = "spacy_syncabel.pipeline"


def is_linker(component: Any) -> bool:
    """Whether a pipeline component is a :class:`~spacy_syncabel.pipeline.SynCABELLinker` (or
    a subclass of it), whatever its name in the pipeline."""
    module = sys.modules.get(COMPONENT_MODULE)
    return module is not None and isinstance(component, module.SynCABELLinker)


def find_linker(nlp: Language, path: Any = "the pipeline"):
    """The pipeline's first syncabel_linker component (E181 when there is none)."""
    for _, pipe in nlp.pipeline:
        if is_linker(pipe):
            return pipe
    raise ValueError(Errors.E181.format(path=path))


def sentence_segmenters(nlp: Language) -> List[Any]:
    """The components before the linker that set sentence starts (and leave entities)."""
    out = []
    for name, proc in nlp.pipeline:
        if is_linker(proc):
            break
        if "token.is_sent_start" in nlp.get_pipe_meta(name).assigns and hasattr(proc, "pipe"):
            out.append(proc)
    return out
