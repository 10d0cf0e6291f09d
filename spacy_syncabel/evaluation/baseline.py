"""The TF-IDF char 3-gram nearest-name linker (scispaCy's candidate generator), as a baseline."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import numpy as np

from ..decoding.candidates import CandidateIndex, char_ngram_vectorizer

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB

__all__ = ["TfidfLinker", "char_ngram_vectorizer"]


class TfidfLinker:
    """Ranks KB names by cosine similarity of char 3-gram TF-IDF vectors, per group.

    ``link(mentions, groups, k)`` returns, per mention, up to k distinct codes best first.
    Pass the linker's ``candidate_index`` to reuse its fitted vectors.
    """

    def __init__(self, kb: "ConceptKB", index: Optional[CandidateIndex] = None) -> None:
        self.kb = kb
        self.index = index if index is not None else CandidateIndex(kb)

    def link(self, mentions: Sequence[str], groups: Sequence[Optional[str]], k: int = 5,
             ) -> List[List[str]]:
        out: List[List[str]] = [[] for _ in mentions]
        by_group: Dict[Optional[str], List[int]] = {}
        for i, g in enumerate(groups):
            by_group.setdefault(self.index.group_of_query(g), []).append(i)
        for g, all_idx in by_group.items():
            for c in range(0, len(all_idx), 256):
                idx = all_idx[c:c + 256]
                top = [cols for cols, _ in
                       self.index.top_columns([mentions[i] for i in idx], g, 4 * k)]
                self._collect(out, idx, top, g, k)
        return out

    def _collect(self, out: List[List[str]], idx: List[int], top: Sequence[np.ndarray],
                 group: Optional[str], k: int) -> None:
        """Turn ranked name columns into up to k distinct codes per query."""
        names = self.index.names[group]
        for qi, order in zip(idx, top):
            codes: List[str] = []
            for j in order.tolist():
                code = self.kb.lookup(names[j], group)
                if code and code not in codes:
                    codes.append(code)
                if len(codes) == k:
                    break
            out[qi] = codes
