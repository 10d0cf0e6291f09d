"""The char 3-gram TF-IDF index of KB names, shared by candidate-restricted decoding, the
TF-IDF baseline and training-target selection.

Candidate-restricted decoding: the index proposes each mention's top-N KB names, the LM
chooses among them (a per-mention trie), and the similarity can be added to the LM's score as
a prior. With ``candidates=0`` the LM searches the whole group's trie.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from ..text import clean_name

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB


def char_ngram_vectorizer() -> TfidfVectorizer:
    """Char 3-grams of lower-cased, padded text, sublinear TF (as scispaCy's linker)."""
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), lowercase=True,
                           sublinear_tf=True, dtype=np.float32)


class CandidateIndex:
    """TF-IDF vectors of every unambiguous KB name, fit once, with one matrix per group.

    ``names[g]`` lists group g's names (``None``: all groups) in the column order of
    ``matrices[g]`` (names × n-grams, transposed for queries); ``matrix`` holds every name's
    row, ``row`` maps a name to it.
    """

    def __init__(self, kb: "ConceptKB") -> None:
        self.vectorizer = char_ngram_vectorizer()
        all_names = kb.names()
        self.matrix = self.vectorizer.fit_transform(all_names)
        self.row = {n: i for i, n in enumerate(all_names)}
        self.names: Dict[Optional[str], List[str]] = {None: all_names}
        self.matrices = {None: self.matrix.T.tocsr()}
        for g in kb.groups:
            self.names[g] = kb.names(g)
            rows = np.asarray([self.row[n] for n in self.names[g]], dtype=np.int64)
            self.matrices[g] = self.matrix[rows].T.tocsr()

    def group_of_query(self, group: Optional[str]) -> Optional[str]:
        """The index's group for a mention's group (unknown groups search all names)."""
        return group if group in self.matrices else None

    def similarities(self, mentions: Sequence[str], group: Optional[str]) -> np.ndarray:
        """Dense cosines, mentions × the group's names."""
        queries = self.vectorizer.transform([clean_name(m) for m in mentions])
        return (queries @ self.matrices[group]).toarray()

    def top(self, mentions: Sequence[str], groups: Sequence[Optional[str]], n: int,
            ) -> List[List[Tuple[str, float]]]:
        """For each mention, up to ``n`` (name, cosine) pairs, best first."""
        out: List[List[Tuple[str, float]]] = [[] for _ in mentions]
        by_group: Dict[Optional[str], List[int]] = {}
        for i, g in enumerate(groups):
            by_group.setdefault(self.group_of_query(g), []).append(i)
        for g, idx in by_group.items():
            sims = self.similarities([mentions[i] for i in idx], g)
            k = min(n, sims.shape[1])
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            for qi, row, cand in zip(idx, sims, top):
                cand = cand[np.argsort(-row[cand], kind="stable")]
                out[qi] = [(self.names[g][j], float(row[j])) for j in cand]
        return out

    def similarity(self, mention: str, names: Sequence[str]) -> List[float]:
        """Cosine between a mention and some names (indexed or not)."""
        if not names:
            return []
        vecs = self.vectorizer.transform([clean_name(mention)] + list(names))
        return (vecs[1:] @ vecs[0].T).toarray().ravel().tolist()
