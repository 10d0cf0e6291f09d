"""Where each gold mention is: ``(document, start, end)``, the key the reference deduplicates
gold mentions on (with the label) and the unit its bootstrap resamples (the document).

For most corpora that is the document id and the mention's offsets. A marked-sentence TSV
(SPACCC ``test_half.tsv``) is read as one document per row, its offsets inside the sentence;
when it has ``filename``, ``start_span`` and ``end_span`` columns, as the reference's inference
TSVs do, those give the place instead: the clinical case and the offsets in it.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from ..types import CorpusDoc

Place = Tuple[str, int, int]
SOURCE_COLUMNS = ("filename", "start_span", "end_span")


def _marked_tsv_places(path: Path, docs: Sequence[CorpusDoc]) -> Optional[List[List[Place]]]:
    from ..tsv import iter_tsv, tsv_header
    from ..corpus.reader import detect_format

    if path.is_dir() or detect_format(path) != "marked_tsv":
        return None
    if not set(SOURCE_COLUMNS) <= set(tsv_header(path)):
        return None
    places: List[List[Place]] = []
    for _, row in iter_tsv(path):
        name = row["filename"].strip()
        try:
            start, end = int(row["start_span"]), int(row["end_span"])
        except ValueError:
            return None
        if not name:
            return None
        places.append([(name[:-4] if name.endswith(".txt") else name, start, end)])
    if len(places) != len(docs) or any(len(d.mentions) != 1 for d in docs):
        return None
    return places


def mention_places(docs: Sequence[CorpusDoc], path: Union[str, Path, None] = None,
                   ) -> List[List[Place]]:
    """Per document, per mention, its place (see the module docstring); ``path`` is the file
    ``docs`` were read from, when known."""
    if path is not None:
        found = _marked_tsv_places(Path(path), docs)
        if found is not None:
            return found
    return [[(d.id, m.start, m.end) for m in d.mentions] for d in docs]


__all__ = ["Place", "mention_places"]
