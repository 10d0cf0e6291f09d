"""Evaluate a ``syncabel_linker`` pipeline on gold mentions, beside the TF-IDF baseline."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from ..errors import Errors
from ..types import NIL, CorpusDoc
from ..decoding.candidates import CandidateIndex
from ..pipes import find_linker, is_linker, sentence_segmenters  # noqa: F401 - importable here
from ..corpus import docs_to_spacy
from .baseline import TfidfLinker
from .end_to_end import end_to_end_metrics, entity_setters
from .metrics import LinkItem, entity_codes, is_linkable, score_links, seen_code_set
from .places import Place, mention_places
from .reliability import ScoredMention, reliability_report, scored_mentions
from .resources import peak_rss_mb, timer


def layered(docs: Sequence[CorpusDoc]) -> List[CorpusDoc]:
    """Split docs with overlapping (nested) mentions into copies whose mentions do not overlap,
    so that every gold mention is linked (spaCy's ``doc.ents`` cannot nest)."""
    return layered_with_places(docs, mention_places(docs))[0]


def layered_with_places(docs: Sequence[CorpusDoc], places: Sequence[Sequence[Place]],
                        ) -> Tuple[List[CorpusDoc], List[List[Place]]]:
    """:func:`layered`, and each layer's mentions' places (see :mod:`.places`)."""
    out: List[CorpusDoc] = []
    out_places: List[List[Place]] = []
    for doc, doc_places in zip(docs, places):
        order = sorted(range(len(doc.mentions)),
                       key=lambda i: (doc.mentions[i].start, -doc.mentions[i].end))
        layers: List[List[int]] = []
        for i in order:
            m = doc.mentions[i]
            for layer in layers:
                if doc.mentions[layer[-1]].end <= m.start:
                    layer.append(i)
                    break
            else:
                layers.append([i])
        if len(layers) <= 1:
            out.append(doc)
            out_places.append(list(doc_places))
            continue
        for n, layer in enumerate(layers):
            out.append(CorpusDoc(f"{doc.id}#{n}", doc.text, [doc.mentions[i] for i in layer],
                                 doc.sentences))
            out_places.append([doc_places[i] for i in layer])
    return out, out_places


def gold_items(corpus: Sequence[CorpusDoc], places: Sequence[Sequence[Place]],
               gold_docs: Sequence[Doc], linked: Sequence[Doc],
               nbests: Optional[List[Any]] = None) -> Tuple[List[LinkItem], List[str]]:
    """``(gold, ranked predicted codes, label, document, start, end)`` for every mention of
    ``corpus`` (layered docs, their places, their spaCy gold docs and the linked docs), and
    each mention's text as the linker saw it. A mention that did not become a gold entity
    (unaligned, or dropped as overlapping after expansion to tokens) has no prediction.
    ``nbests``: a list that gets each mention's n-best (``ent._.syncabel``, or None)."""
    items: List[LinkItem] = []
    texts: List[str] = []
    for cdoc, doc_places, gold, out in zip(corpus, places, gold_docs, linked):
        gold_ents = {(e.start_char, e.end_char): e for e in gold.ents}
        predicted = {(e.start_char, e.end_char): e for e in out.ents}
        claimed = set()
        for m, (where, start, end) in zip(cdoc.mentions, doc_places):
            span = gold.char_span(m.start, m.end, alignment_mode="expand")
            key = (span.start_char, span.end_char) if span is not None else None
            g = gold_ents.get(key) if key is not None else None
            codes: List[str] = []
            nbest = None
            if (g is not None and key not in claimed and g.label_ == m.label
                    and g.kb_id_ == (m.code or NIL)):
                claimed.add(key)
                codes = entity_codes(predicted.get(key))
                nbest = _nbest(predicted.get(key))
            if nbests is not None:
                nbests.append(nbest)
            items.append((m.code, codes, m.label, where, start, end))
            texts.append(span.text if span is not None else cdoc.text[m.start:m.end])
    return items, texts


def _nbest(ent: Optional[Any]) -> Optional[List[Dict[str, Any]]]:
    if ent is None or not ent.has_extension("syncabel"):
        return None
    return ent._.syncabel


def gold_codes(docs: Sequence[CorpusDoc], kb=None) -> set:
    """Every single code in a corpus (composites split; alternative codes mapped by ``kb``)."""
    return seen_code_set((m.code for d in docs for m in d.mentions), kb)


def link_gold_docs(nlp: Language, linker: Any, gold_docs: Sequence[Doc],
                   batch_size: int = 64) -> List[Doc]:
    """The linker's output on copies of ``gold_docs`` (gold entities, codes removed, the
    pipeline's sentences)."""
    inputs = [d.copy() for d in gold_docs]
    for d in inputs:
        for t in d:
            t.ent_kb_id_ = ""
    for segmenter in sentence_segmenters(nlp):  # the linker sees the pipeline's sentences
        inputs = list(segmenter.pipe(inputs))
    return list(linker.pipe(inputs, batch_size=batch_size))


def scored_gold_mentions(nlp: Language, corpus: Sequence[CorpusDoc], batch_size: int = 64,
                         linker: Any = None) -> List[ScoredMention]:
    """Link the gold mentions of ``corpus`` (as :func:`evaluate_linker` does) and return the
    counted ones with their n-best and whether the top candidate is right."""
    from ..corpus import docs_to_spacy

    linker = linker if linker is not None else find_linker(nlp)
    raw = list(corpus)
    layers, places = layered_with_places(raw, mention_places(raw))
    gold_docs = docs_to_spacy(nlp, layers)
    linked = link_gold_docs(nlp, linker, gold_docs, batch_size)
    nbests: List[Any] = []
    items, texts = gold_items(layers, places, gold_docs, linked, nbests)
    return scored_mentions(items, nbests, linker.kb, texts)


def evaluate_linker(nlp: Language, corpus: Sequence[CorpusDoc], *, train: Optional[Sequence[CorpusDoc]] = None,
                    batch_size: int = 64, k: int = 5, baseline: bool = True,
                    source: str = "", end_to_end: bool = True,
                    places: Optional[Sequence[Sequence[Place]]] = None, bootstrap: int = 0,
                    seed: int = 42) -> Dict[str, Any]:
    """Link the gold mentions of ``corpus`` with the pipeline's linker and score them.

    Only the linker runs (gold mentions are its input); they are scored by the reference's
    rule (:mod:`.metrics`), deduplicated by ``places`` (default
    :func:`~.places.mention_places`). ``bootstrap`` > 0: document-level 95% intervals of
    Recall@1 (``recall@1_ci``), seeded. Returns metrics.json's content. With
    ``end_to_end`` and a component before the linker that sets entities (an NER), the whole
    pipeline also runs on the raw texts and its own spans are scored (``ner_p``,
    ``linking_f``..., :func:`~.end_to_end.end_to_end_metrics`).
    """
    linker = find_linker(nlp)
    raw = list(corpus)
    corpus, places = layered_with_places(raw, places if places is not None
                                         else mention_places(raw))
    gold_docs: List[Doc] = docs_to_spacy(nlp, corpus)
    n_mentions = sum(1 for d in corpus for m in d.mentions if is_linkable(m.code))
    if n_mentions == 0:
        raise ValueError(Errors.E050.format(path=source))
    with timer() as t:
        linked = link_gold_docs(nlp, linker, gold_docs, batch_size)
    # one rule for every path: the reference's mentions and the canonical codes of score's
    nbests: List[Any] = []
    items, mentions = gold_items(corpus, places, gold_docs, linked, nbests)
    groups = [linker.group_for(item[2]) for item in items]
    seen = gold_codes(train, linker.kb) if train is not None else None
    n_total = sum(len(d.ents) for d in linked)
    metrics: Dict[str, Any] = score_links(items, (1, k), linker.kb, seen, bootstrap=bootstrap,
                                          seed=seed)
    metrics.update({
        "seconds": t["seconds"],
        "mentions_per_second": n_total / t["seconds"] if t["seconds"] else 0.0,
        "peak_rss_mb": peak_rss_mb(),
        "num_beams": linker.cfg["num_beams"],
        "constrained": linker.cfg["constrained"],
        "corpus": source,
    })
    metrics["calibration"] = reliability_report(
        scored_mentions(items, nbests, linker.kb),
        nil_threshold=getattr(linker, "nil_threshold", None))
    if baseline:
        # the scispaCy-style baseline over the KB's names; and, when the linker retrieves
        # candidates through training-mention aliases too, the same TF-IDF over both
        index = linker.candidate_index
        variants = [("baseline_tfidf", index if not index.aliases else CandidateIndex(linker.kb))]
        if index.aliases:
            variants.append(("baseline_tfidf_aliases", index))
        for prefix, idx in variants:
            tfidf = TfidfLinker(linker.kb, idx)
            with timer() as tb:
                ranked = tfidf.link(mentions, groups, k)
            base = score_links([(it[0], p, *it[2:]) for it, p in zip(items, ranked)],
                               (1, k), linker.kb, seen)
            metrics[f"{prefix}_recall@1"] = base["recall@1"]
            metrics[f"{prefix}_recall@1_lenient"] = base["recall@1_lenient"]
            metrics[f"{prefix}_recall@1_in_kb"] = base["recall@1_in_kb"]
            metrics[f"{prefix}_recall@{k}"] = base[f"recall@{k}"]
            metrics[f"{prefix}_per_label"] = base["per_label"]
            metrics[f"{prefix}_mentions_per_second"] = len(mentions) / tb["seconds"]
            for part in ("seen", "unseen"):
                if part in base:
                    metrics[f"{prefix}_{part}"] = base[part]
    if end_to_end and entity_setters(nlp, linker.name):
        metrics.update(end_to_end_metrics(nlp, raw, batch_size=batch_size, baseline=baseline,
                                          linker=linker, source=source))
    return metrics
