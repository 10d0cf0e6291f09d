"""Training targets: the KB name of a gold code that the linker should generate for a mention.

The completion is a KB name of the gold code *that the group's trie can produce*
(``kb.lookup(name, group) == code``), the one closest to the mention by char 3-gram TF-IDF
cosine (SynCABEL's synonym selection); a composite code ``a+b`` gets one name per part.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence

import numpy as np

from ..decoding.candidates import CandidateIndex
from ..prompting import SEP_TOKEN, PromptTemplate
from ..text import clean_name
from ..types import COMPOSITE_SEP, NIL, NO_CODE

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB


class NameSelector:
    """Ranks the names of a code by char 3-gram TF-IDF cosine to a mention.

    Uses the KB's :class:`CandidateIndex` (fit once on all the KB's names; vectors cached).
    """

    def __init__(self, kb: "ConceptKB", index: Optional["CandidateIndex"] = None) -> None:
        self.kb = kb
        index = index if index is not None else CandidateIndex(kb)
        self.vectorizer, self.matrix, self.row = index.vectorizer, index.matrix, index.row

    def candidates(self, code: str, group: Optional[str]) -> List[str]:
        """Names of ``code`` the trie of ``group`` can produce and that map back to it."""
        names = self.kb.names_of(code, group)
        return [n for n in names if self.kb.lookup(n, group) == code]

    def vectorize(self, mentions: Sequence[str]):
        """TF-IDF query vectors of many mentions at once (rows of a sparse matrix)."""
        return self.vectorizer.transform([clean_name(m) for m in mentions])

    def rank(self, mention: str, names: Sequence[str], query=None) -> List[str]:
        """``names`` sorted by decreasing cosine to ``mention`` (ties: input order);
        ``query``: the mention's vector when already computed (:meth:`vectorize`)."""
        if len(names) <= 1:
            return list(names)
        if query is None:
            query = self.vectorizer.transform([clean_name(mention)])
        rows = [self.row.get(n) for n in names]
        if any(r is None for r in rows):  # not in the fitted set: vectorize on the fly
            mat = self.vectorizer.transform(list(names))
        else:
            mat = self.matrix[rows]
        sims = (mat @ query.T).toarray().ravel()
        order = np.argsort(-sims, kind="stable")
        return [names[i] for i in order]


def canonical_parts(kb: "ConceptKB", raw_code: str) -> List[str]:
    """The parts of a (composite) gold code, each mapped to its main KB code."""
    return [kb.canonical_code(p.strip()) for p in raw_code.split(COMPOSITE_SEP) if p.strip()]


def gold_target_name(selector: NameSelector, mention: str, code: str,
                     group: Optional[str]) -> Optional[str]:
    """The SFT target of a mention: per part, the producible name closest to the mention."""
    names = []
    for part in code.split(COMPOSITE_SEP):
        ranked = selector.rank(mention, selector.candidates(part, group))
        if not ranked:
            return None
        names.append(ranked[0])
    return SEP_TOKEN.join(names)


class TargetWriter:
    """The completion text of a gold code for a mention, as the training chooses it; None
    for NIL / NO_CODE, codes missing from the KB, and codes the group cannot produce."""

    def __init__(self, kb: "ConceptKB", sep: str = SEP_TOKEN,
                 selector: Optional[NameSelector] = None) -> None:
        self.kb = kb
        self.selector = selector if selector is not None else NameSelector(kb)
        self.sep = sep

    def __call__(self, mention: str, code: Optional[str], group: Optional[str]) -> Optional[str]:
        if not code or code in (NIL, NO_CODE):
            return None
        parts = canonical_parts(self.kb, code)
        if not parts or any(p not in self.kb for p in parts):
            return None
        names = gold_target_name(self.selector, mention, COMPOSITE_SEP.join(parts), group)
        return None if names is None else PromptTemplate.completion(names.split(SEP_TOKEN),
                                                                    self.sep)


__all__ = ["NameSelector", "canonical_parts", "gold_target_name", "TargetWriter"]
