"""``syncabel_span_union``: one span group for the linker from the NER's entities and the
spans of a span categorizer, nested and overlapping spans kept.

A flat NER (``doc.ents``) never predicts a span that nests in or crosses another; a span
categorizer (spaCy's ``span_finder`` + ``spancat``, writing ``doc.spans[source_key]``) can.
Placed after the NER (and the dictionary proposer) and before a linker whose ``spans_key`` is
this component's ``spans_key``, it writes ``doc.spans[spans_key]``:

* ``nested``: ``doc.ents`` plus the source spans that nest in or contain an entity (the nested
  mentions are added, the NER's other decisions kept);
* ``all``: ``doc.ents`` plus every source span;
* ``source``: the source spans only (the span categorizer alone).

A span (start, end, label) is written once; ``doc.ents`` are left as they are.
"""
from __future__ import annotations

import warnings
from typing import Dict, Iterable, List, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup

from ..errors import Errors, Warnings

FACTORY = "syncabel_span_union"
KEEP = ("nested", "all", "source")
#: the group an assembled pipeline's linker reads
SPANS_KEY = "mentions"
DEFAULT_CONFIG = {"source_key": "sc", "spans_key": SPANS_KEY, "keep": "nested"}


@Language.factory(FACTORY, assigns=["doc.spans"], default_config=DEFAULT_CONFIG)
def make_span_union(nlp: Language, name: str, source_key: str, spans_key: str,
                    keep: str) -> "SpanUnion":
    return SpanUnion(name, source_key=source_key, spans_key=spans_key, keep=keep)


def nests(a: Span, b: Span) -> bool:
    """True when one of ``a`` and ``b`` lies within the other (tokens) and they differ."""
    if (a.start, a.end) == (b.start, b.end):
        return False
    return (a.start >= b.start and a.end <= b.end) or (b.start >= a.start and b.end <= a.end)


class SpanUnion:
    """Writes ``doc.spans[spans_key]`` from ``doc.ents`` and ``doc.spans[source_key]``."""

    def __init__(self, name: str = FACTORY, *, source_key: str = "sc",
                 spans_key: str = "mentions", keep: str = "nested") -> None:
        if keep not in KEEP:
            raise ValueError(Errors.E670.format(value=keep, name=name))
        if source_key == spans_key:
            raise ValueError(Errors.E671.format(name=name, key=spans_key))
        self.name, self.source_key, self.spans_key, self.keep = name, source_key, spans_key, keep
        self._warned = False

    def select(self, doc: Doc) -> List[Span]:
        """The spans of the group, ordered by start and end, each (start, end, label) once."""
        ents = list(doc.ents)
        if self.source_key not in doc.spans:
            if not self._warned:
                warnings.warn(Warnings.W670.format(key=self.source_key, name=self.name,
                                                   out=self.spans_key))
                self._warned = True
            source: List[Span] = []
        else:
            source = list(doc.spans[self.source_key])
        if self.keep == "source":
            chosen = source
        elif self.keep == "all":
            chosen = ents + source
        else:
            chosen = ents + [s for s in source if any(nests(s, e) for e in ents)]
        seen: Dict[Tuple[int, int, str], Span] = {}
        for span in chosen:
            seen.setdefault((span.start, span.end, span.label_), span)
        return [seen[k] for k in sorted(seen)]

    def __call__(self, doc: Doc) -> Doc:
        doc.spans[self.spans_key] = SpanGroup(doc, name=self.spans_key, spans=self.select(doc))
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128):
        for doc in stream:
            yield self(doc)


__all__ = ["FACTORY", "KEEP", "SPANS_KEY", "SpanUnion", "make_span_union", "nests"]
