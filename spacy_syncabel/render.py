"""The ``render`` command: the exact prompt and target text of every gold mention.

A corpus is read as at evaluation, each text goes through the pipeline's components before
``syncabel_linker`` (so its own sentence segmenter sets the sentences), the gold mentions
become ``doc.ents`` and the linker renders each one with :meth:`SynCABELLinker.mention_prompt`.
The target is the completion the training would use: the KB name of the gold code closest to
the mention (:class:`~spacy_syncabel.training.examples.NameSelector`), one per part of a
composite code, written by :meth:`PromptTemplate.completion`.
"""
from __future__ import annotations

import json
import warnings
from bisect import bisect_right
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from .errors import Errors, Warnings
from .evaluation.evaluate import find_linker
from .prompting import SEP_TOKEN, PromptTemplate
from .types import COMPOSITE_SEP, NIL, NO_CODE, CorpusDoc, GoldMention

LINKER = "syncabel_linker"


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
    from .corpus.spacy_docs import set_sentences

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


class TargetWriter:
    """The completion text of a gold code for a mention, as the training chooses it; None
    for NIL / NO_CODE, codes missing from the KB, and codes the group cannot produce."""

    def __init__(self, linker: Any) -> None:
        from .training.examples import NameSelector

        self.kb = linker.kb
        self.selector = NameSelector(linker.kb)
        self.sep = linker.template.sep

    def __call__(self, mention: str, code: Optional[str], group: Optional[str]) -> Optional[str]:
        from .training.examples import canonical_parts
        from .training.negatives import gold_target_name

        if not code or code in (NIL, NO_CODE):
            return None
        parts = canonical_parts(self.kb, code)
        if not parts or any(p not in self.kb for p in parts):
            return None
        names = gold_target_name(self.selector, mention, COMPOSITE_SEP.join(parts), group)
        return None if names is None else PromptTemplate.completion(names.split(SEP_TOKEN),
                                                                    self.sep)


def render_docs(nlp: Language, docs: Sequence[CorpusDoc],
                stats: Optional[Dict[str, Any]] = None) -> Iterator[Dict[str, Any]]:
    """One record per gold mention: ``{"doc_id", "start", "end", "label", "prompt",
    "target", "code"}``; mentions that match no token are counted in ``stats``."""
    linker = find_linker(nlp)
    targets = TargetWriter(linker)
    stats = stats if stats is not None else {}
    stats.setdefault("mentions", 0)
    stats.setdefault("unaligned", [])
    for cdoc in docs:
        doc = prepare_doc(nlp, cdoc)
        pairs = gold_spans(doc, cdoc)
        doc.ents = filter_spans([s for _, s in pairs if s is not None])
        has_sents, text = doc.has_annotation("SENT_START"), doc.text
        for m, span in pairs:
            stats["mentions"] += 1
            if span is None:
                stats["unaligned"].append(f"{cdoc.id}:{m.start}-{m.end}")
                continue
            group = linker.group_for(m.label)
            prompt = linker.mention_prompt(doc, span, group, has_sents=has_sents, text=text)
            yield {"doc_id": cdoc.id, "start": m.start, "end": m.end, "label": m.label,
                   "prompt": prompt, "target": targets(span.text, m.code, group),
                   "code": m.code}


def render(pipeline: Union[str, Path], corpus: Union[str, Path], output: Union[str, Path],
           limit: int = 0) -> Dict[str, Any]:
    """Write ``output`` (JSONL, one line per gold mention of ``corpus``) with the prompts the
    pipeline's linker renders and their targets; returns counts."""
    import spacy

    from . import pipeline as _factories  # noqa: F401 - registers the linker and segmenter
    from .corpus import read_corpus

    nlp = spacy.load(pipeline)
    find_linker(nlp, pipeline)  # E181 before any work
    docs = read_corpus(corpus)
    if limit:
        docs = docs[:limit]
    if not any(d.mentions for d in docs):
        raise ValueError(Errors.E182.format(path=corpus))
    stats: Dict[str, Any] = {}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as f:  # readable: non-ASCII left as it is
        for record in render_docs(nlp, docs, stats):
            f.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
    unaligned = stats.pop("unaligned")
    if unaligned:
        warnings.warn(Warnings.W180.format(n=len(unaligned), path=corpus, first=unaligned[0]))
    stats.update(written=stats["mentions"] - len(unaligned), unaligned=len(unaligned),
                 docs=len(docs), output=str(output))
    return stats
