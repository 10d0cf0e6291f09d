"""End-to-end scores of a pipeline that finds its own mentions (an NER before the linker).

Raw texts go through the whole pipeline; its entities are compared with the gold mentions:

* **Strict NER**: a predicted entity is right when its span (start and end characters) and its
  type are a gold mention's. The type is the label mapped through the linker's ``label_map``
  (:func:`entity_type`), the groups the project's NER is trained on (NCBI's four disease
  classes count as ``Disease``).
* **Strict linking** (the DisTEMIST-linking and CANTEMIST-NORM measure): a predicted entity is
  right when its span and its code are a gold mention's, the codes compared as canonical code
  sets (:func:`~spacy_syncabel.evaluation.metrics.canonical`). Every gold mention with a code
  counts, even ``NO_CODE`` or a code outside the KB (``n_gold_unreachable`` says how many); an
  entity the linker leaves NIL or ``NO_CODE`` (its answer has no code in the KB) predicts no
  code, so it never matches a ``NO_CODE`` gold.
* **NER + TF-IDF**: the same predicted spans linked by the top-1 TF-IDF name
  (:class:`~spacy_syncabel.evaluation.baseline.TfidfLinker`), scored the same way.

Sets of ``(doc, start, end, type or code)`` are compared, so a duplicated gold row counts once.
The predictions are the spans the linker links (:meth:`SynCABELLinker.mentions`): ``doc.ents``,
or with the linker's ``spans_key`` its span group, whose spans may nest in or cross each other;
gold spans are all kept, nested ones included. A span (and type) predicted twice in a group
counts once, with the code of its first occurrence, so each gold span is matched at most once
(``n_predicted_duplicate`` counts the repeats).
Per label, both sets are first restricted to that type (gold by its type, predictions by theirs).
A prediction whose type a document was not annotated for
(:attr:`~spacy_syncabel.types.CorpusDoc.annotated_labels`: SPACCC's procedure layer covers a
third of its documents) is neither right nor wrong: it is left out and counted in
``n_predicted_unannotated``. A type with gold mentions and no prediction warns (W420).
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple

from spacy.language import Language

from ..decoding.candidates import CandidateIndex
from ..errors import Warnings
from ..pipes import find_linker
from ..types import CorpusDoc
from .baseline import TfidfLinker
from .metrics import EXCLUDED_NO_CODE, canonical, exclusion, in_kb, is_linkable
from .resources import timer

# (doc index, start char, end char, type or canonical code) -> the mention's type
Spans = Dict[Tuple[int, int, int, str], str]


def entity_type(label: str, label_map: Mapping[str, Optional[str]]) -> str:
    """The type an entity is scored (and the project's NER trained) under: its label mapped
    by the linker's ``label_map``, or the label itself when the map has no group for it."""
    group = label_map.get(label)
    return group if group is not None else label


def predicts_code(code: str) -> bool:
    """True when an entity's code is an answer: not empty, NIL or NO_CODE (in any part)."""
    return is_linkable(code) and exclusion(code) != EXCLUDED_NO_CODE


def entity_setters(nlp: Language, before: Optional[str] = None) -> List[str]:
    """Names of the components that set ``doc.ents`` (``ner``, ``entity_ruler``...), only those
    before the component ``before`` when it is given."""
    names = list(nlp.pipe_names)
    if before is not None and before in names:
        names = names[:names.index(before)]
    return [n for n in names if "doc.ents" in nlp.get_pipe_meta(n).assigns]


def prf(predicted: Sequence[Hashable], gold: Sequence[Hashable]) -> Dict[str, float]:
    """Precision, recall and F1 of two sets of items (0.0 where undefined)."""
    pred, ref = set(predicted), set(gold)
    tp = len(pred & ref)
    p = tp / len(pred) if pred else 0.0
    r = tp / len(ref) if ref else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f": f, "tp": tp, "n_predicted": len(pred), "n_gold": len(ref)}


def _of_type(spans: Spans, type_: str) -> List[Tuple[int, int, int, str]]:
    return [key for key, t in spans.items() if t == type_]


def _block(name: str, pred: Spans, gold: Spans, types: Sequence[str],
           out: Dict[str, Any], per_label: Dict[str, Dict[str, Any]]) -> None:
    """``{name}_p/r/f`` into ``out`` and, per type, into ``per_label``."""
    score = prf(list(pred), list(gold))
    out.update({f"{name}_{k}": score[k] for k in ("p", "r", "f")})
    out[f"{name}_tp"] = score["tp"]
    for t in types:
        s = prf(_of_type(pred, t), _of_type(gold, t))
        per_label[t].update({f"{name}_{k}": s[k] for k in ("p", "r", "f", "tp")})


def end_to_end_metrics(nlp: Language, corpus: Sequence[CorpusDoc], *, batch_size: int = 64,
                       baseline: bool = True, linker=None, source: str = "") -> Dict[str, Any]:
    """Run the whole pipeline on the texts of ``corpus`` and score its entities against the
    gold mentions: strict NER and linking P/R/F1 (fractions), per label, beside NER + TF-IDF.
    ``linker``: the pipeline's syncabel_linker (found when None)."""
    linker = linker if linker is not None else find_linker(nlp)
    kb, label_map = linker.kb, dict(linker.label_map)
    gold_ner: Spans = {}
    gold_link: Spans = {}
    n_unreachable = 0
    for i, doc in enumerate(corpus):
        for m in doc.mentions:
            t = entity_type(m.label, label_map)
            gold_ner[(i, m.start, m.end, t)] = t
            if is_linkable(m.code):
                key = (i, m.start, m.end, canonical(m.code, kb))
                if key not in gold_link and (exclusion(str(m.code), kb) is not None
                                             or not in_kb(str(m.code), kb)):
                    n_unreachable += 1
                gold_link[key] = t
    if not gold_ner:
        warnings.warn(Warnings.W201.format(split="evaluation", path=source or "given"))
    with timer() as tm:
        docs = list(nlp.pipe((d.text for d in corpus), batch_size=batch_size))
    pred_ner: Spans = {}
    pred_link: Spans = {}
    ents: List[Tuple[Tuple[int, int, int], str, str, Optional[str]]] = []
    n_unannotated = n_duplicate = 0
    for i, doc in enumerate(docs):
        layers = corpus[i].annotated_labels
        scored = None if layers is None else {entity_type(lab, label_map) for lab in layers}
        for e in linker.mentions(doc):
            t = entity_type(e.label_, label_map)
            if scored is not None and t not in scored:
                n_unannotated += 1
                continue
            key = (i, e.start_char, e.end_char, t)
            if key in pred_ner:  # the same span and type again in a span group
                n_duplicate += 1
                continue
            pred_ner[key] = t
            if predicts_code(e.kb_id_):
                pred_link[(i, e.start_char, e.end_char, canonical(e.kb_id_, kb))] = t
            ents.append(((i, e.start_char, e.end_char), t, e.text, linker.group_for(e.label_)))
    types = sorted(set(gold_ner.values()) | set(pred_ner.values()))
    per_label: Dict[str, Dict[str, Any]] = {
        t: {"n_gold": len(_of_type(gold_ner, t)), "n_predicted": len(_of_type(pred_ner, t))}
        for t in types}
    never = [t for t in types if per_label[t]["n_gold"] and not per_label[t]["n_predicted"]]
    if never:
        warnings.warn(Warnings.W420.format(source=source or "the corpus", labels=never,
                                           have="has" if len(never) == 1 else "have"))
    out: Dict[str, Any] = {}
    _block("ner", pred_ner, gold_ner, types, out, per_label)
    _block("linking", pred_link, gold_link, types, out, per_label)
    if baseline:
        index = linker.candidate_index
        variants = [("baseline_tfidf", index if not index.aliases else CandidateIndex(kb))]
        if index.aliases:
            variants.append(("baseline_tfidf_aliases", index))
        for prefix, idx in variants:
            top = TfidfLinker(kb, idx).link([e[2] for e in ents], [e[3] for e in ents], 1)
            pred: Spans = {(*span, canonical(codes[0], kb)): t
                           for (span, t, _, _), codes in zip(ents, top) if codes}
            _block(f"{prefix}_linking", pred, gold_link, types, out, per_label)
    seconds = tm["seconds"]
    out.update({
        "per_label_end_to_end": per_label,
        "end_to_end": {"n_docs": len(docs), "n_gold_mentions": len(gold_ner),
                       "n_gold_codes": len(gold_link), "n_gold_unreachable": n_unreachable,
                       "n_predicted": len(pred_ner), "n_predicted_linked": len(pred_link),
                       "n_predicted_unannotated": n_unannotated,
                       "n_predicted_duplicate": n_duplicate,
                       "spans_key": linker.spans_key,
                       "ner_components": entity_setters(nlp, linker.name),
                       "seconds": seconds,
                       "docs_per_second": len(docs) / seconds if seconds else 0.0},
    })
    return out


__all__ = ["entity_type", "entity_setters", "predicts_code", "prf", "end_to_end_metrics"]
