"""The linking cascade: mentions the dictionary or the retriever settle skip the LM.

Before any LM call (``engine.link`` with ``cascade`` on; never ``engine.mine``), each mention
is looked up:

* its folded text (:func:`~.candidates.fold`) matches KB names or training aliases of its group
  that all name ONE code: settled on that code;
* it matches names of several codes: never settled, the LM chooses;
* otherwise the retriever settles it when its top-1 score minus the best score of a name with
  another code (0 when there is none) is at least ``cascade_margin`` (None: never).

A settled mention's n-best is the retriever's list merged by code (``merge_by_code``), the
exact match's code first. Its entries carry the retrieval score as ``score`` and
``similarity`` (1.0 for the exact match), ``logprob`` 0.0 (no LM ran) and ``path``
"dictionary" (an exact match) or "retriever".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from ..types import NO_CODE, PATH_DICTIONARY, PATH_RETRIEVER, Candidate
from .candidates import ExactIndex, Retrieved

#: (name, group) -> the name's code in the group (``ConceptKB.lookup``)
Lookup = Callable[[str, Optional[str]], Optional[str]]


@dataclass(frozen=True)
class Settlement:
    """What the dictionary and the retriever say about one mention before the LM."""

    ranked: Tuple[Candidate, ...]  # the n-best the mention gets when settled
    exact: Optional[str] = None  # the one code an exact match names
    ambiguous: bool = False  # an exact match names several codes
    margin: float = 0.0  # retriever: top-1 score minus the best other code's
    # a coordinated mention under the composite gate: settled, the LM still decides whether
    # it is a composite (its answer is taken only when it is one)
    composite_open: bool = False

    def settled(self, margin: Optional[float]) -> bool:
        """Whether the mention skips the LM at cut-off ``margin`` (None: exact matches only)."""
        if self.ambiguous or not self.ranked:
            return False
        if self.exact is not None:
            return True
        return margin is not None and self.margin >= margin


def code_margin(coded: Sequence[Tuple[str, str, float]]) -> float:
    """Top-1 score minus the best score of a name with another code (0 when none) of
    ``(name, code, score)`` in retrieval order; 0.0 for an empty list."""
    if not coded:
        return 0.0
    _, top_code, top_score = coded[0]
    other = max((score for _, code, score in coded[1:] if code != top_code), default=0.0)
    return float(top_score - other)


def settle(mention: str, group: Optional[str], retrieved: Sequence[Retrieved],
           exact: ExactIndex, lookup: Lookup, n_best: int,
           merge_by_code: bool = True) -> Settlement:
    """One mention's :class:`Settlement` from its exact matches and retrieved candidates;
    ``lookup``: a name's code in a group (e.g. ``kb.lookup``)."""
    codes = exact.codes(mention, group)
    coded = [(r.name, lookup(r.name, group) or NO_CODE, float(r.score)) for r in retrieved]
    head: List[Tuple[str, str, float]] = []
    if len(codes) == 1:
        head.append((exact.names(mention, group)[0], codes[0], 1.0))
    ranked: List[Candidate] = []
    names, seen = set(), set()
    path = PATH_DICTIONARY if len(codes) == 1 else PATH_RETRIEVER
    for name, code, score in head + coded:
        if name in names or (merge_by_code and code in seen):
            continue
        names.add(name)
        seen.add(code)
        ranked.append(Candidate(name, code, score, 0.0, score, path))
        if len(ranked) == n_best:
            break
    return Settlement(tuple(ranked), exact=codes[0] if len(codes) == 1 else None,
                      ambiguous=len(codes) > 1, margin=code_margin(coded))


__all__ = ["Settlement", "settle", "code_margin"]
