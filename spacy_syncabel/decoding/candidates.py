"""Candidate-restricted decoding: a char 3-gram TF-IDF index proposes each mention's top-N KB
names, the LM chooses among them (a per-mention trie), and the similarity can be added to the
LM's score as a prior. With ``candidates=0`` the LM searches the whole group's trie."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..text import clean_name

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB


class CandidateIndex:
    """Top-N KB names per mention by char 3-gram TF-IDF cosine, within the mention's group."""

    def __init__(self, kb: "ConceptKB") -> None:
        from ..evaluation.baseline import char_ngram_vectorizer

        self.vectorizer = char_ngram_vectorizer()
        self.names: Dict[Optional[str], List[str]] = {None: kb.names()}
        for g in kb.groups:
            self.names[g] = kb.names(g)
        all_names = self.names[None]
        matrix = self.vectorizer.fit_transform(all_names)
        index = {n: i for i, n in enumerate(all_names)}
        self.matrices = {None: matrix.T.tocsr()}
        for g in kb.groups:
            rows = np.asarray([index[n] for n in self.names[g]], dtype=np.int64)
            self.matrices[g] = matrix[rows].T.tocsr()

    def top(self, mentions: Sequence[str], groups: Sequence[Optional[str]], n: int,
            ) -> List[List[Tuple[str, float]]]:
        """For each mention, up to ``n`` (name, cosine) pairs, best first."""
        out: List[List[Tuple[str, float]]] = [[] for _ in mentions]
        if not mentions:
            return out
        queries = self.vectorizer.transform([clean_name(m) for m in mentions])
        by_group: Dict[Optional[str], List[int]] = {}
        for i, g in enumerate(groups):
            by_group.setdefault(g if g in self.matrices else None, []).append(i)
        for g, idx in by_group.items():
            sims = (queries[idx] @ self.matrices[g]).toarray()
            k = min(n, sims.shape[1])
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            for qi, row, cand in zip(idx, sims, top):
                cand = cand[np.argsort(-row[cand], kind="stable")]
                out[qi] = [(self.names[g][j], float(row[j])) for j in cand]
        return out

    def similarity(self, mention: str, names: Sequence[str]) -> List[float]:
        """Cosine between a mention and some names."""
        if not names:
            return []
        vecs = self.vectorizer.transform([clean_name(mention)] + list(names))
        return (vecs[1:] @ vecs[0].T).toarray().ravel().tolist()
