"""spaCy docs as plain mentions for the prompt builder, and a corpus as the linker sees it.

:func:`doc_mention` turns an entity of a ``Doc`` into a :class:`~.builder.Mention` (its
sentence found from its tokens' neighbours); :func:`prepare_doc` builds the ``Doc`` of a corpus
document exactly as the linker sees it in a pipeline (tokens split at the gold bounds, the
components before the linker run) and :func:`gold_spans` finds its gold mentions in it.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Dict, Iterable, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..corpus.spacy_docs import set_sentences
from ..types import NIL, CorpusDoc, GoldMention
from .builder import Mention

LINKER = "syncabel_linker"


def sentence_bounds(doc: Doc, ent: Span) -> Tuple[int, int]:
    """Character bounds of the sentence(s) holding ``ent``, found from its tokens' neighbours
    (``Span.sent`` walks every sentence of the doc: quadratic over a long note)."""
    start = ent.start
    while start > 0 and not doc[start].is_sent_start:
        start -= 1
    end = ent.end
    while end < len(doc) and not doc[end].is_sent_start:
        end += 1
    return doc[start].idx, doc[end - 1].idx + len(doc[end - 1])


def doc_mention(ent: Span, group: Optional[str], has_sents: Optional[bool] = None,
                text: Optional[str] = None) -> Mention:
    """``ent`` as a plain :class:`Mention`, typed by the KB ``group`` it is linked against
    (its label when None). ``has_sents`` (whether its doc
    has sentence starts) and ``text`` (``doc.text``) are computed when None; a caller turning
    many entities of one doc passes them, since both walk the whole doc."""
    doc = ent.doc
    if has_sents is None:
        has_sents = doc.has_annotation("SENT_START")
    if text is None:
        text = doc.text
    sentence = sentence_bounds(doc, ent) if has_sents else None
    type_ = group if group is not None else ent.label_
    return Mention(text, ent.start_char, ent.end_char, type_, sentence)


def split_tokens_at(doc: Doc, offsets: Iterable[int]) -> Doc:
    """Split the tokens of ``doc`` so that every character offset in ``offsets`` is a token
    boundary ("pT3aNo|Mo", "no-|hidrocele"); works in place and returns the doc. Gold
    mentions then keep their exact characters instead of growing to whole tokens."""
    idx = [t.idx for t in doc]
    cuts: Dict[int, List[int]] = {}
    for off in set(offsets):
        i = bisect_right(idx, off) - 1  # the token starting at or before ``off``
        if i >= 0 and idx[i] < off < idx[i] + len(doc[i]):
            cuts.setdefault(i, []).append(off - idx[i])
    if not cuts:
        return doc
    with doc.retokenize() as retok:
        for i, rel in cuts.items():
            tok = doc[i]
            bounds = [0] + sorted(rel) + [len(tok)]
            orths = [tok.text[a:b] for a, b in zip(bounds, bounds[1:])]
            retok.split(tok, orths, heads=[(tok, 0)] * len(orths))
    return doc


def prepare_doc(nlp: Language, cdoc: CorpusDoc, upto: Optional[str] = LINKER) -> Doc:
    """The spaCy doc of ``cdoc`` as the linker sees it: tokens split at the gold mention
    bounds, the corpus's sentences (if any) set first, then the pipeline's components before
    ``upto`` run (a sentence segmenter among them overrides the corpus's sentences)."""
    doc = nlp.make_doc(cdoc.text)
    split_tokens_at(doc, [o for m in cdoc.mentions for o in (m.start, m.end)])
    doc.user_data["id"] = cdoc.id
    if cdoc.sentences:
        set_sentences(doc, cdoc.sentences)
    for name, proc in nlp.pipeline:
        if name == upto:
            break
        doc = proc(doc)
    return doc


def gold_spans(doc: Doc, cdoc: CorpusDoc) -> List[Tuple[GoldMention, Optional[Span]]]:
    """Each gold mention with its span (white space at its ends left out; None when its
    offsets fall off the text or on white space only)."""
    out = []
    for m in cdoc.mentions:
        span = doc.char_span(m.start, m.end, label=m.label, kb_id=m.code or NIL,
                             alignment_mode="contract")
        out.append((m, span if span is not None and span.text.strip() else None))
    return out


__all__ = ["LINKER", "sentence_bounds", "doc_mention", "split_tokens_at", "prepare_doc",
           "gold_spans"]
