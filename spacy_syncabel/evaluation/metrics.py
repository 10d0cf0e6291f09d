"""Recall@k for entity linking, the way the field reports it.

A prediction list *hits* a gold code at k when one of its first k codes equals the gold; a
composite gold (``a+b``) is a hit only when one predicted code holds all its parts.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ..types import COMPOSITE_SEP, NIL


@dataclass
class LinkResult:
    """Gold and ranked predicted codes for one mention."""

    gold: str
    predicted: List[str]
    label: str = ""


def _parts(code: str) -> frozenset:
    return frozenset(c for c in code.split(COMPOSITE_SEP) if c)


def hit(gold: str, predicted: Sequence[str], k: int) -> bool:
    """True when the gold code (all parts of a composite) is among the first k predictions."""
    want = _parts(gold)
    return any(_parts(p) >= want for p in predicted[:k] if p)


def recall_report(results: Sequence[LinkResult], ks: Sequence[int] = (1, 5),
                  seen_codes: Optional[Set[str]] = None) -> Dict[str, object]:
    """Recall@k overall, per label and (with ``seen_codes``) for seen/unseen gold codes."""
    def block(rs: Sequence[LinkResult]) -> Dict[str, float]:
        n = len(rs)
        out: Dict[str, float] = {"n_mentions": n}
        for k in ks:
            out[f"recall@{k}"] = sum(hit(r.gold, r.predicted, k) for r in rs) / n if n else 0.0
        return out

    report: Dict[str, object] = dict(block(results))
    by_label: Dict[str, List[LinkResult]] = defaultdict(list)
    for r in results:
        by_label[r.label].append(r)
    report["per_label"] = {lab: block(rs) for lab, rs in sorted(by_label.items())}
    if seen_codes is not None:
        seen = [r for r in results if _parts(r.gold) <= seen_codes]
        unseen = [r for r in results if not _parts(r.gold) <= seen_codes]
        report["seen"] = block(seen)
        report["unseen"] = block(unseen)
    return report


def recall_at_k_from_docs(pairs: Iterable[Tuple[object, object]], ks: Sequence[int] = (1, 5),
                          prefix: str = "") -> Dict[str, float]:
    """Recall@k from (predicted Doc, reference Doc) pairs, reading ``ent._.syncabel``.

    Every gold entity with a code other than NIL counts; a gold entity the prediction does not
    hold with the same offsets counts as a miss.
    """
    results: List[LinkResult] = []
    for pred, ref in pairs:
        predicted = {(e.start_char, e.end_char): e for e in pred.ents}
        for g in ref.ents:
            if not g.kb_id_ or g.kb_id_ == NIL:
                continue
            p = predicted.get((g.start_char, g.end_char))
            codes: List[str] = []
            if p is not None:
                cands = p._.get("syncabel") if p.has_extension("syncabel") else None
                codes = [c["code"] for c in cands] if cands else ([p.kb_id_] if p.kb_id_ else [])
            results.append(LinkResult(g.kb_id_, codes, g.label_))
    rep = recall_report(results, ks)
    return {f"{prefix}recall@{k}": rep[f"recall@{k}"] for k in ks}
