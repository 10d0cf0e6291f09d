"""Evaluate a ``syncabel_linker`` pipeline on gold mentions, beside the TF-IDF baseline."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from spacy.language import Language
from spacy.tokens import Doc

from ..errors import Errors
from ..types import NIL, CorpusDoc
from ..decoding.candidates import CandidateIndex
from .baseline import TfidfLinker
from .metrics import doc_link_items, is_linkable, score_links, seen_code_set
from .resources import peak_rss_mb, timer


def find_linker(nlp: Language, path: Any = "the pipeline"):
    """The pipeline's syncabel_linker component (E181 when there is none)."""
    for name, pipe in nlp.pipeline:
        if getattr(pipe, "__class__", None).__name__ == "SynCABELLinker":
            return pipe
    raise ValueError(Errors.E181.format(path=path))


def sentence_segmenters(nlp: Language) -> List[Any]:
    """The components before the linker that set sentence starts (and leave entities)."""
    out = []
    for name, proc in nlp.pipeline:
        if getattr(proc, "__class__", None).__name__ == "SynCABELLinker":
            break
        if "token.is_sent_start" in nlp.get_pipe_meta(name).assigns and hasattr(proc, "pipe"):
            out.append(proc)
    return out


def layered(docs: Sequence[CorpusDoc]) -> List[CorpusDoc]:
    """Split docs with overlapping (nested) mentions into copies whose mentions do not overlap,
    so that every gold mention is linked (spaCy's ``doc.ents`` cannot nest)."""
    out: List[CorpusDoc] = []
    for doc in docs:
        layers: List[List] = []
        for m in sorted(doc.mentions, key=lambda m: (m.start, -m.end)):
            for layer in layers:
                if layer[-1].end <= m.start:
                    layer.append(m)
                    break
            else:
                layers.append([m])
        if len(layers) <= 1:
            out.append(doc)
        else:
            out += [CorpusDoc(f"{doc.id}#{i}", doc.text, layer, doc.sentences)
                    for i, layer in enumerate(layers)]
    return out


def gold_codes(docs: Sequence[CorpusDoc], kb=None) -> set:
    """Every single code in a corpus (composites split; alternative codes mapped by ``kb``)."""
    return seen_code_set((m.code for d in docs for m in d.mentions), kb)


def evaluate_linker(nlp: Language, corpus: Sequence[CorpusDoc], *, train: Optional[Sequence[CorpusDoc]] = None,
                    batch_size: int = 64, k: int = 5, baseline: bool = True,
                    source: str = "", end_to_end: bool = True) -> Dict[str, Any]:
    """Link the gold mentions of ``corpus`` with the pipeline's linker and score them.

    Only the linker runs (gold mentions are its input). Returns metrics.json's content. With
    ``end_to_end`` and a component before the linker that sets entities (an NER), the whole
    pipeline also runs on the raw texts and its own spans are scored (``ner_p``,
    ``linking_f``..., :func:`~.end_to_end.end_to_end_metrics`).
    """
    from ..corpus import docs_to_spacy
    from .end_to_end import end_to_end_metrics, entity_setters

    linker = find_linker(nlp)
    raw = list(corpus)
    corpus = layered(corpus)
    gold_docs: List[Doc] = docs_to_spacy(nlp, corpus)
    n_mentions = sum(1 for d in gold_docs for e in d.ents if e.kb_id_ and e.kb_id_ != NIL)
    if n_mentions == 0:
        raise ValueError(Errors.E050.format(path=source))
    inputs = [d.copy() for d in gold_docs]
    for d in inputs:
        for t in d:
            t.ent_kb_id_ = ""
    for segmenter in sentence_segmenters(nlp):  # the linker sees the pipeline's sentences
        inputs = list(segmenter.pipe(inputs))
    with timer() as t:
        linked = list(linker.pipe(inputs, batch_size=batch_size))
    # one rule for every path: the same items and canonical codes as nlp.evaluate's
    items = doc_link_items(zip(linked, gold_docs))
    golds = [e for d in gold_docs for e in d.ents if is_linkable(e.kb_id_)]
    mentions = [e.text for e in golds]
    groups = [linker.group_for(e.label_) for e in golds]
    seen = gold_codes(train, linker.kb) if train is not None else None
    n_total = sum(len(d.ents) for d in linked)
    metrics: Dict[str, Any] = score_links(items, (1, k), linker.kb, seen)
    metrics.update({
        "seconds": t["seconds"],
        "mentions_per_second": n_total / t["seconds"] if t["seconds"] else 0.0,
        "peak_rss_mb": peak_rss_mb(),
        "num_beams": linker.cfg["num_beams"],
        "constrained": linker.cfg["constrained"],
        "corpus": source,
    })
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
            base = score_links([(gold, p, label) for (gold, _, label), p in zip(items, ranked)],
                               (1, k), linker.kb, seen)
            metrics[f"{prefix}_recall@1"] = base["recall@1"]
            metrics[f"{prefix}_recall@1_lenient"] = base["recall@1_lenient"]
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
