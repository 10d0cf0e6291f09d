"""Recall@k for entity linking: the SynCABEL paper's exact rule, with our lenient rule beside it.

One implementation serves every path (CLI ``evaluate``, ``score``, the component's
``nlp.evaluate`` via :func:`recall_at_k_from_docs`, calibration and DPO dev recall):

* **Canonical codes.** A code is split into its parts (``a+b``), each part stripped and mapped
  to its main code by ``kb.canonical_code`` (alternative MEDIC ids, CANTEMIST ``/H`` codes),
  then kept as a set.
* **Exact hit (the paper's).** A prediction list hits at k when one of its first k codes has
  *the same* code set as the gold.
* **Lenient hit (ours before).** One of the first k codes holds *every* part of the gold (a
  superset). Reported beside as ``recall@1_lenient``.
* **Exclusions.** Gold ``NO_CODE`` (any part) and, when a KB is given, gold codes with a part
  outside the KB are left out and counted (``n_excluded``, broken down in ``excluded``).
  Gold NIL or empty codes are not linking targets and are skipped without being counted.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

from ..types import COMPOSITE_SEP, NIL, NO_CODE

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB

EXCLUDED_NO_CODE = "no_code"
EXCLUDED_NOT_IN_KB = "not_in_kb"


@dataclass
class LinkResult:
    """Gold and ranked predicted codes for one mention (canonical when built by
    :func:`link_results`)."""

    gold: str
    predicted: List[str]
    label: str = ""


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
    """Why a linkable gold code is left out of recall (``"no_code"``, ``"not_in_kb"``), or None."""
    parts = code_set(gold, kb)
    if not parts or NO_CODE in parts:
        return EXCLUDED_NO_CODE
    if kb is not None and not all(p in kb for p in parts):
        return EXCLUDED_NOT_IN_KB
    return None


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


def link_results(items: Iterable[Tuple[Optional[str], Sequence[str], str]],
                 kb: Optional["ConceptKB"] = None) -> Tuple[List[LinkResult], Dict[str, int]]:
    """Canonical :class:`LinkResult` s from ``(gold, ranked predicted codes, label)`` items,
    and the count of excluded golds by reason. Items with an empty or NIL gold are skipped."""
    results: List[LinkResult] = []
    excluded: Counter = Counter()
    for gold, predicted, label in items:
        if not is_linkable(gold):
            continue
        why = exclusion(str(gold), kb)
        if why is not None:
            excluded[why] += 1
            continue
        results.append(LinkResult(canonical(gold, kb),
                                  [canonical(p, kb) for p in predicted if p], label))
    return results, {EXCLUDED_NO_CODE: excluded[EXCLUDED_NO_CODE],
                     EXCLUDED_NOT_IN_KB: excluded[EXCLUDED_NOT_IN_KB]}


def _block(rs: Sequence[LinkResult], ks: Sequence[int]) -> Dict[str, float]:
    n = len(rs)
    out: Dict[str, float] = {"n_mentions": n}
    for k in ks:
        out[f"recall@{k}"] = sum(hit(r.gold, r.predicted, k) for r in rs) / n if n else 0.0
    out["recall@1_lenient"] = (sum(hit(r.gold, r.predicted, 1, lenient=True) for r in rs) / n
                               if n else 0.0)
    return out


def recall_report(results: Sequence[LinkResult], ks: Sequence[int] = (1, 5),
                  seen_codes: Optional[Set[str]] = None) -> Dict[str, object]:
    """Exact Recall@k (and lenient Recall@1) overall, per label, on the composite golds
    (several parts) and, with ``seen_codes``, for gold codes all of whose parts were seen in
    training / not."""
    report: Dict[str, object] = dict(_block(results, ks))
    by_label: Dict[str, List[LinkResult]] = defaultdict(list)
    for r in results:
        by_label[r.label].append(r)
    report["per_label"] = {lab: _block(rs, ks) for lab, rs in sorted(by_label.items())}
    report["composite"] = _block([r for r in results if len(code_set(r.gold)) > 1], ks)
    if seen_codes is not None:
        seen = [r for r in results if code_set(r.gold) <= seen_codes]
        unseen = [r for r in results if not code_set(r.gold) <= seen_codes]
        report["seen"] = _block(seen, ks)
        report["unseen"] = _block(unseen, ks)
    return report


def score_links(items: Iterable[Tuple[Optional[str], Sequence[str], str]],
                ks: Sequence[int] = (1, 5), kb: Optional["ConceptKB"] = None,
                seen_codes: Optional[Set[str]] = None) -> Dict[str, object]:
    """:func:`link_results` then :func:`recall_report`, with ``n_excluded`` and ``excluded``."""
    results, excluded = link_results(items, kb)
    report = recall_report(results, ks, seen_codes)
    report["n_excluded"] = sum(excluded.values())
    report["excluded"] = excluded
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
            p = predicted.get((g.start_char, g.end_char))
            codes: List[str] = []
            if p is not None:
                cands = p._.get("syncabel") if p.has_extension("syncabel") else None
                codes = [c["code"] for c in cands] if cands else ([p.kb_id_] if p.kb_id_ else [])
            items.append((g.kb_id_, codes, g.label_))
    return items


def recall_at_k_from_docs(pairs: Iterable[Tuple[object, object]], ks: Sequence[int] = (1, 5),
                          prefix: str = "", kb: Optional["ConceptKB"] = None) -> Dict[str, float]:
    """Exact Recall@k from (predicted Doc, reference Doc) pairs, reading ``ent._.syncabel``,
    with the canonical codes and exclusions of ``kb`` (the linker's): the same rule as
    ``evaluate`` and ``score``. A gold entity without a prediction at its offsets is a miss."""
    rep = score_links(doc_link_items(pairs), ks, kb)
    return {f"{prefix}recall@{k}": rep[f"recall@{k}"] for k in ks}
