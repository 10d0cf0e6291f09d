"""spaCy ``.spacy`` (DocBin) corpora: entities from ``doc.ents`` with ``kb_id_`` as code."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from spacy.tokens import DocBin
from spacy.vocab import Vocab

from ..errors import Errors
from ..types import CorpusDoc, GoldMention
from ._util import PathLike, sort_mentions


def read_docbin(path: PathLike, vocab: Optional[Vocab] = None) -> List[CorpusDoc]:
    """Read a DocBin; the doc id is ``doc.user_data["id"]`` when present, else
    ``{stem}-{i}``. An empty ``kb_id_`` gives code ``None``. Sentences are taken when the
    docs have sentence boundaries."""
    path = Path(path)
    try:
        db = DocBin().from_disk(path)
    except (ValueError, TypeError, KeyError) as err:  # msgpack / zlib errors
        raise ValueError(Errors.E197.format(path=path, err=f"{type(err).__name__}: {err}")
                         ) from None
    out = []
    for i, doc in enumerate(db.get_docs(vocab or Vocab())):
        mentions = [GoldMention(e.start_char, e.end_char, e.label_, e.kb_id_ or None)
                    for e in doc.ents]
        sentences = None
        if doc.has_annotation("SENT_START"):
            sentences = [(s.start_char, s.end_char) for s in doc.sents]
        doc_id = doc.user_data.get("id") if doc.user_data else None
        out.append(CorpusDoc(id=str(doc_id) if doc_id is not None else f"{path.stem}-{i}",
                             text=doc.text, mentions=sort_mentions(mentions),
                             sentences=sentences))
    return out
