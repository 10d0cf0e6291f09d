"""Recall@k for entity linking: the SynCABEL paper's exact rule, with our lenient rule beside it.

One implementation serves every path (CLI ``evaluate``, ``score``, ``compare``, the component's
``nlp.evaluate`` via :func:`recall_at_k_from_docs`, calibration and DPO dev recall):

* **Which mentions count (the reference's ``load_predictions``).** One gold mention per
  ``(document, label, start, end)``: later duplicates are dropped (``excluded["duplicate"]``).
  Gold codes holding ``NO_CODE`` (any part) are dropped (``excluded["no_code"]``). Nothing
  else is: a gold code outside the KB stays, and is a miss unless predicted as such.
  ``n_mentions`` is that count. Gold NIL or empty codes are no linking targets and are
  skipped without being counted.
* **Canonical codes.** A code is split into its parts (``a+b``), each part stripped and mapped
  to its main code by ``kb.canonical_code`` (alternative MEDIC ids, CANTEMIST ``/H`` codes),
  then kept as a set.
* **Exact hit (the paper's).** A prediction list hits at k when one of its first k codes has
  *the same* code set as the gold.
* **Lenient hit (ours before).** One of the first k codes holds *every* part of the gold (a
  superset). Reported beside as ``recall@1_lenient``.
* **In-KB recall.** ``recall@1_in_kb`` is Recall@1 on the gold mentions whose every part is in
  the KB (``n_mentions_in_kb``; ``n_not_in_kb`` the others): the number this module reported
  as ``recall@1`` before gold codes outside the KB were counted as misses.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

from ..types import COMPOSITE_SEP, NIL, NO_CODE
from .bootstrap import add_recall_cis

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB

EXCLUDED_NO_CODE = "no_code"
EXCLUDED_DUPLICATE = "duplicate"
EXCLUDED_NOT_IN_KB = "not_in_kb"

# (gold code, ranked predicted codes, label) and, optionally, where the gold mention is:
# (document id, start, end). Items that say where are deduplicated and can be bootstrapped.
LinkItem = Tuple  # (gold, predicted, label[, doc, start, end])


@dataclass
class LinkResult:
    """Gold and ranked predicted codes for one mention (canonical when built by
    :func:`link_results`), its label, document and whether its gold is in the KB."""

    gold: str
    predicted: List[str]
    label: str = ""
    doc: str = ""
    in_kb: bool = True

    def hits(self, k: int) -> bool:
        """Whether one of the first ``k`` predictions has the gold's code set."""
        return hit(self.gold, self.predicted, k)


def code_set(code: Optional[str], kb: Optional["ConceptKB"] = None) -> FrozenSet[str]:
    """The canonical parts of a (composite) code: split on ``+``, stripped, mapped to main
    codes by ``kb``; empty parts dropped."""
    if not code:
        return frozenset()
    parts = (p.strip() for p in str(code).split(COMPOSITE_SEP))
    if kb is None:
        return frozenset(p for p in parts if p)
    return frozenset(kb.canonical_code(p) for p in parts if p)


def canonical(code: Optional[str], kb: Optional["ConceptKB"] = None) -> str:
    """One string per code set: the canonical parts sorted and joined by ``+``."""
    return COMPOSITE_SEP.join(sorted(code_set(code, kb)))


def is_linkable(gold: Optional[str]) -> bool:
    """False for a gold that is no linking target at all (empty or NIL)."""
    return bool(gold) and str(gold).strip() not in ("", NIL)


def exclusion(gold: str, kb: Optional["ConceptKB"] = None) -> Optional[str]:
    """Why a linkable gold code is left out of recall (``"no_code"``), or None. A gold code
    outside the KB is not left out (see :func:`in_kb`)."""
    parts = code_set(gold, kb)
    if not parts or NO_CODE in parts:
        return EXCLUDED_NO_CODE
    return None


def in_kb(gold: str, kb: Optional["ConceptKB"] = None) -> bool:
    """True when every part of ``gold`` is in ``kb`` (always, without a KB)."""
    return kb is None or all(p in kb for p in code_set(gold, kb))


def hit(gold: str, predicted: Sequence[str], k: int, *, kb: Optional["ConceptKB"] = None,
        lenient: bool = False) -> bool:
    """True when one of the first k predictions has the gold's code set (``lenient``: holds
    every part of it)."""
    want = code_set(gold, kb)
    if not want:
        return False
    for p in predicted[:k]:
        got = code_set(p, kb)
        if got == want or (lenient and got >= want):
            return True
    return False


def link_results(items: Iterable[LinkItem], kb: Optional["ConceptKB"] = None,
                 ) -> Tuple[List[LinkResult], Dict[str, int]]:
    """Canonical :class:`LinkResult` s from ``(gold, ranked predicted codes, label[, doc,
    start, end])`` items, by the reference's rule (module docstring): the first item of each
    ``(doc, label, start, end)``, gold NO_CODE dropped; and the count of dropped items by
    reason. Items with an empty or NIL gold are skipped."""
    results: List[LinkResult] = []
    excluded: Counter = Counter()
    seen: Set[Tuple] = set()
    for item in items:
        gold, predicted, label = item[0], item[1], item[2]
        doc = ""
        if len(item) >= 6:
            doc = str(item[3])
            key = (doc, label, int(item[4]), int(item[5]))
            if key in seen:
                excluded[EXCLUDED_DUPLICATE] += 1
                continue
            seen.add(key)
        if not is_linkable(gold):
            continue
        if exclusion(str(gold), kb) is not None:
            excluded[EXCLUDED_NO_CODE] += 1
            continue
        results.append(LinkResult(canonical(gold, kb), [canonical(p, kb) for p in predicted if p],
                                  label, doc, in_kb(str(gold), kb)))
    return results, {EXCLUDED_NO_CODE: excluded[EXCLUDED_NO_CODE],
                     EXCLUDED_DUPLICATE: excluded[EXCLUDED_DUPLICATE]}


def _block(rs: Sequence[LinkResult], ks: Sequence[int]) -> Dict[str, float]:
    n = len(rs)
    out: Dict[str, float] = {"n_mentions": n}
    for k in ks:
        out[f"recall@{k}"] = sum(hit(r.gold, r.predicted, k) for r in rs) / n if n else 0.0
    out["recall@1_lenient"] = (sum(hit(r.gold, r.predicted, 1, lenient=True) for r in rs) / n
                               if n else 0.0)
    inside = [r for r in rs if r.in_kb]
    out["recall@1_in_kb"] = (sum(hit(r.gold, r.predicted, 1) for r in inside) / len(inside)
                             if inside else 0.0)
    out["n_mentions_in_kb"] = len(inside)
    return out


def composite_answers(results: Sequence[LinkResult]) -> Dict[str, float]:
    """The top-1 answers that are composite: how many, how many have the gold's code set, and
    their precision (right / answers; 0.0 without any)."""
    answers = [r for r in results if r.predicted and len(code_set(r.predicted[0])) > 1]
    right = sum(hit(r.gold, r.predicted, 1) for r in answers)
    return {"n": len(answers), "right": right,
            "precision@1": right / len(answers) if answers else 0.0}


def recall_report(results: Sequence[LinkResult], ks: Sequence[int] = (1, 5),
                  seen_codes: Optional[Set[str]] = None) -> Dict[str, object]:
    """Exact Recall@k (and lenient and in-KB Recall@1) overall, per label, on the composite
    golds (several parts) and, with ``seen_codes``, for gold codes all of whose parts were
    seen in training / not."""
    report: Dict[str, object] = dict(_block(results, ks))
    report["n_not_in_kb"] = sum(1 for r in results if not r.in_kb)
    by_label: Dict[str, List[LinkResult]] = defaultdict(list)
    for r in results:
        by_label[r.label].append(r)
    report["per_label"] = {lab: _block(rs, ks) for lab, rs in sorted(by_label.items())}
    report["composite"] = _block([r for r in results if len(code_set(r.gold)) > 1], ks)
    report["composite_answers"] = composite_answers(results)
    if seen_codes is not None:
        seen = [r for r in results if code_set(r.gold) <= seen_codes]
        unseen = [r for r in results if not code_set(r.gold) <= seen_codes]
        report["seen"] = _block(seen, ks)
        report["unseen"] = _block(unseen, ks)
    return report


def score_links(items: Iterable[LinkItem], ks: Sequence[int] = (1, 5),
                kb: Optional["ConceptKB"] = None, seen_codes: Optional[Set[str]] = None,
                bootstrap: int = 0, seed: int = 42) -> Dict[str, object]:
    """:func:`link_results` then :func:`recall_report`, with ``n_excluded`` and ``excluded``;
    with ``bootstrap`` > 0 (items that say their document), document-level bootstrap 95%
    intervals of Recall@1 (:func:`~.bootstrap.add_recall_cis`)."""
    results, excluded = link_results(items, kb)
    report = recall_report(results, ks, seen_codes)
    report["n_excluded"] = sum(excluded.values())
    report["excluded"] = excluded
    if bootstrap:
        add_recall_cis(report, results, bootstrap, seed)
    return report


def seen_code_set(codes: Iterable[Optional[str]], kb: Optional["ConceptKB"] = None) -> Set[str]:
    """Every canonical single code among ``codes`` (NIL and NO_CODE left out)."""
    out: Set[str] = set()
    for code in codes:
        if is_linkable(code):
            out |= code_set(code, kb)
    out.discard(NO_CODE)
    out.discard(NIL)
    return out


def doc_link_items(pairs: Iterable[Tuple[object, object]]
                   ) -> List[Tuple[str, List[str], str]]:
    """``(gold code, ranked predicted codes, label)`` per gold entity of (predicted Doc,
    reference Doc) pairs. Predictions are read from ``ent._.syncabel`` (else ``kb_id_``) of
    the predicted entity with the same offsets; a gold entity without one gets no prediction."""
    items: List[Tuple[str, List[str], str]] = []
    for pred, ref in pairs:
        predicted = {(e.start_char, e.end_char): e for e in pred.ents}
        for g in ref.ents:
            if not is_linkable(g.kb_id_):
                continue
            items.append((g.kb_id_, entity_codes(predicted.get((g.start_char, g.end_char))),
                          g.label_))
    return items


def entity_codes(entity: Optional[object]) -> List[str]:
    """The ranked codes of a linked entity: its ``._.syncabel`` candidates, else its
    ``kb_id_``; none for no entity."""
    if entity is None:
        return []
    ent = entity  # type: ignore[assignment]
    cands = ent._.get("syncabel") if ent.has_extension("syncabel") else None  # type: ignore[attr-defined]
    if cands:
        return [c["code"] for c in cands]
    return [ent.kb_id_] if ent.kb_id_ else []  # type: ignore[attr-defined]


def recall_at_k_from_docs(pairs: Iterable[Tuple[object, object]], ks: Sequence[int] = (1, 5),
                          prefix: str = "", kb: Optional["ConceptKB"] = None) -> Dict[str, float]:
    """Exact Recall@k from (predicted Doc, reference Doc) pairs, reading ``ent._.syncabel``,
    with the canonical codes and exclusions of ``kb`` (the linker's): the same rule as
    ``evaluate`` and ``score``. A gold entity without a prediction at its offsets is a miss."""
    rep = score_links(doc_link_items(pairs), ks, kb)
    return {f"{prefix}recall@{k}": rep[f"recall@{k}"] for k in ks}
