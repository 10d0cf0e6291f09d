"""The TF-IDF char 3-gram nearest-name linker (scispaCy's candidate generator), as a baseline."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from ..text import clean_name

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB


def char_ngram_vectorizer() -> TfidfVectorizer:
    """Char 3-grams of lower-cased, padded text, sublinear TF (as scispaCy's linker)."""
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), lowercase=True,
                           sublinear_tf=True, dtype=np.float32)


class TfidfLinker:
    """Ranks KB names by cosine similarity of char 3-gram TF-IDF vectors, per group.

    ``link(mentions, groups, k)`` returns, per mention, up to k distinct codes best first.
    """

    def __init__(self, kb: "ConceptKB") -> None:
        self.kb = kb
        self.vectorizer = char_ngram_vectorizer()
        self.names: List[str] = kb.names()
        self.matrix = self.vectorizer.fit_transform(self.names)
        self.row_group: Dict[Optional[str], np.ndarray] = {None: np.arange(len(self.names))}
        index = {n: i for i, n in enumerate(self.names)}
        for g in kb.groups:
            self.row_group[g] = np.asarray([index[n] for n in kb.names(g)], dtype=np.int64)

    def link(self, mentions: Sequence[str], groups: Sequence[Optional[str]], k: int = 5,
             ) -> List[List[str]]:
        out: List[List[str]] = [[] for _ in mentions]
        queries = self.vectorizer.transform([clean_name(m) for m in mentions])
        by_group: Dict[Optional[str], List[int]] = {}
        for i, g in enumerate(groups):
            by_group.setdefault(g if g in self.row_group else None, []).append(i)
        for g, all_idx in by_group.items():
            rows = self.row_group[g]
            sub = self.matrix[rows].T.tocsr()
            for c in range(0, len(all_idx), 256):
                idx = all_idx[c:c + 256]
                sims = (queries[idx] @ sub).toarray()
                top = np.argsort(-sims, axis=1, kind="stable")[:, : 4 * k]
                self._collect(out, idx, top, rows, g, k)
        return out

    def _collect(self, out: List[List[str]], idx: List[int], top: np.ndarray,
                 rows: np.ndarray, group: Optional[str], k: int) -> None:
        """Turn ranked name rows into up to k distinct codes per query."""
        for qi, order in zip(idx, top):
            codes: List[str] = []
            for j in order:
                code = self.kb.lookup(self.names[rows[j]], group)
                if code and code not in codes:
                    codes.append(code)
                if len(codes) == k:
                    break
            out[qi] = codes
