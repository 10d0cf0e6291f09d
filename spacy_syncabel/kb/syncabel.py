"""The KB of a published SynCABEL checkpoint: its ``text_to_code.json``.

A SynCABEL checkpoint folder (Hugging Face layout) carries ``text_to_code.json``, one object per
semantic group mapping each KB name the model can generate to its code::

    {"PROCEDIMIENTO": {"ecografía de abdomen y pelvis": "418394000", ...}, "SINTOMA": {...}}

The linker rebuilds its tries from this KB; the checkpoint's ``candidate_trie.pkl`` is never
read (unpickling a downloaded file can run arbitrary code).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, List, Optional, Tuple, Union

import spacy

from ..errors import Errors
from ..textio import json_loads
from .concept_kb import ConceptKB

TEXT_TO_CODE = "text_to_code.json"
PathLike = Union[str, Path]

__all__ = ["TEXT_TO_CODE", "read_text_to_code", "kb_from_syncabel"]


def _map_path(path: PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / TEXT_TO_CODE
    if not p.is_file():
        raise FileNotFoundError(Errors.E133.format(
            path=path, problem=f"no {TEXT_TO_CODE}. Give the checkpoint folder or the path of "
                               "its text_to_code.json."))
    return p


def read_text_to_code(path: PathLike) -> ConceptKB:
    """A :class:`ConceptKB` from a checkpoint folder or its ``text_to_code.json`` (UTF-8)."""
    p = _map_path(path)
    try:
        with open(p, encoding="utf-8") as f:
            data = json_loads(f.read())
    except UnicodeDecodeError as err:
        raise ValueError(Errors.E134.format(
            path=p, problem=f"not UTF-8 ({err.reason} at byte {err.start})")) from None
    except json.JSONDecodeError as err:
        raise ValueError(Errors.E134.format(
            path=p, problem=f"invalid JSON at line {err.lineno}, column {err.colno} "
                            f"({err.msg})")) from None
    except ValueError as err:  # NaN, nested too deep
        raise ValueError(Errors.E134.format(path=p, problem=str(err))) from None
    if not isinstance(data, dict) or not data:
        raise ValueError(Errors.E134.format(path=p, problem="the top level is not a non-empty "
                                                            "object of groups"))
    entries: List[Tuple[str, str, str]] = []
    for group, names in data.items():
        if not isinstance(names, dict):
            raise ValueError(Errors.E134.format(
                path=p, problem=f"group {group!r} maps to {type(names).__name__}, not an object"))
        for name, code in names.items():
            if isinstance(code, bool) or not isinstance(code, (str, int)) or not str(code).strip():
                raise ValueError(Errors.E134.format(
                    path=p, problem=f"group {group!r}, name {name!r}: code {code!r} is not a "
                                    "non-empty string"))
            entries.append((str(code).strip(), name, str(group)))
    kb = ConceptKB(entries, source=str(p))
    if len(kb) == 0:
        raise ValueError(Errors.E005.format(path=p))
    return kb


@spacy.registry.misc("spacy_syncabel.KBFromSynCABEL.v1")
def kb_from_syncabel(path: str, revision: Optional[str] = None) -> Callable[[], ConceptKB]:
    """Lazy loader of a SynCABEL checkpoint's KB (folder, ``text_to_code.json`` or the Hub id
    of the checkpoint, fetched into the Hub cache as ``SynCABELCheckpoint.v1`` does)."""
    def load() -> ConceptKB:
        from ..models import resolve_checkpoint

        return read_text_to_code(resolve_checkpoint(path, revision=revision))

    return load
