"""Turn :class:`CorpusDoc` objects into spaCy ``Doc`` objects and ``Example`` objects."""
from __future__ import annotations

import bisect
import warnings
from typing import Iterable, List, Optional, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.vocab import Vocab

from ..types import NIL, CorpusDoc
from ..errors import Warnings

NlpLike = Union[Language, Vocab, str, None]


def _as_nlp(nlp_or_vocab: NlpLike) -> Language:
    if isinstance(nlp_or_vocab, Language):
        return nlp_or_vocab
    if isinstance(nlp_or_vocab, Vocab):
        return spacy.blank(nlp_or_vocab.lang or "xx", vocab=nlp_or_vocab)
    return spacy.blank(nlp_or_vocab or "xx")


def set_sentences(doc: Doc, sentences) -> None:
    """Set ``token.is_sent_start`` from (start, end) character spans: a token starts a
    sentence when a sentence start falls after the previous token's start and at or before
    its own."""
    starts = sorted({int(s) for s, _ in sentences})
    for i, token in enumerate(doc):
        if i == 0:
            token.is_sent_start = True
            continue
        prev = doc[i - 1].idx
        j = bisect.bisect_right(starts, prev)
        token.is_sent_start = j < len(starts) and starts[j] <= token.idx


def docs_to_spacy(nlp_or_vocab: NlpLike, docs: Iterable[CorpusDoc], *,
                  spans_key: Optional[str] = None) -> List[Doc]:
    """Tokenize each document with ``nlp.make_doc`` (a blank multi-language pipeline for a
    ``Vocab`` or ``None``, ``spacy.blank(lang)`` for a language code) and set ``doc.ents``
    from its mentions (``kb_id_`` = code or ``NIL``), expanding them to token boundaries.
    Overlapping mentions: the longest is kept, the others are dropped and reported once
    (W040) unless ``spans_key`` is given: then every aligned mention, nested and crossing ones
    included, is also in ``doc.spans[spans_key]`` (what a span categorizer trains on) and the
    dropped ones are not reported. ``doc.user_data["id"]`` holds the document id; sentence
    starts are set when the document has ``sentences``."""
    nlp = _as_nlp(nlp_or_vocab)
    out: List[Doc] = []
    n_overlap = n_unaligned = 0
    first_overlap: Optional[str] = None
    first_unaligned: Optional[str] = None
    for cdoc in docs:
        doc = nlp.make_doc(cdoc.text)
        doc.user_data["id"] = cdoc.id
        spans: List[Span] = []
        for m in cdoc.mentions:
            span = doc.char_span(m.start, m.end, label=m.label, kb_id=m.code or NIL,
                                 alignment_mode="expand")
            if span is None or len(span) == 0:
                n_unaligned += 1
                first_unaligned = first_unaligned or f"{cdoc.id} {m.start}-{m.end}"
                continue
            spans.append(span)
        # longest first, then leftmost; keep what does not overlap a kept span
        spans.sort(key=lambda s: (-(s.end_char - s.start_char), s.start, s.end))
        taken = set()
        kept = []
        for span in spans:
            toks = set(range(span.start, span.end))
            if toks & taken:
                n_overlap += 1
                first_overlap = first_overlap or f"{cdoc.id} '{span.text}' ({span.start_char}-{span.end_char})"
                continue
            taken |= toks
            kept.append(span)
        doc.ents = sorted(kept, key=lambda s: s.start)
        if spans_key is not None:
            doc.spans[spans_key] = sorted(spans, key=lambda s: (s.start, s.end))
        if cdoc.sentences:
            set_sentences(doc, cdoc.sentences)
        out.append(doc)
    if n_overlap and spans_key is None:
        warnings.warn(Warnings.W040.format(n=n_overlap, first=first_overlap), stacklevel=2)
    if n_unaligned:
        warnings.warn(Warnings.W041.format(n=n_unaligned, first=first_unaligned),
                      stacklevel=2)
    return out


def docs_to_examples(nlp: NlpLike, docs: Iterable[CorpusDoc]) -> List[Example]:
    """``Example(predicted, reference)`` pairs for scoring: the reference is the gold doc of
    :func:`docs_to_spacy`, the predicted doc has the same tokens and sentence starts but no
    entities."""
    examples = []
    for gold in docs_to_spacy(nlp, docs):
        pred = gold.copy()
        pred.ents = []
        examples.append(Example(pred, gold))
    return examples
