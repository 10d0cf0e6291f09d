"""The char 3-gram TF-IDF index of KB names, shared by candidate-restricted decoding, the
TF-IDF baseline and training-target selection.

Candidate-restricted decoding: the index proposes each mention's top-N KB names, the LM
chooses among them (a per-mention trie), and the similarity can be added to the LM's score as
a prior. With ``candidates=0`` the LM searches the whole group's trie.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from ..text import clean_name

if TYPE_CHECKING:  # pragma: no cover
    from ..kb import ConceptKB


def char_ngram_vectorizer() -> TfidfVectorizer:
    """Char 3-grams of lower-cased, padded text, sublinear TF (as scispaCy's linker)."""
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), lowercase=True,
                           sublinear_tf=True, dtype=np.float32)


Alias = Tuple[str, str, Optional[str]]  # (alias text, KB name it stands for, group)


class CandidateIndex:
    """TF-IDF vectors of every unambiguous KB name, fit once, with one matrix per group.

    ``names[g]`` lists group g's names (``None``: all groups) in the column order of
    ``matrices[g]`` (names × n-grams, transposed for queries); ``matrix`` holds every name's
    row, ``row`` maps a name to it.

    ``aliases``: extra searchable strings, each standing for a KB name of its group (e.g. the
    training mentions, each for its target name; BioSyn and SapBERT add training mentions to
    their dictionaries the same way). They are appended as extra columns of their group whose
    ``names[g]`` entry is the name they stand for, so a name scores the best cosine of itself
    and its aliases; the vocabulary is fit on the names and aliases.
    """

    def __init__(self, kb: "ConceptKB", aliases: Optional[Sequence[Alias]] = None) -> None:
        self.vectorizer = char_ngram_vectorizer()
        all_names = kb.names()
        self.aliases: List[Alias] = [a for a in (aliases or [])
                                     if kb.lookup(a[1], a[2]) is not None]
        if self.aliases:  # the vocabulary (and IDF) covers the aliases' n-grams too
            self.vectorizer.fit(all_names + [clean_name(a[0]) for a in self.aliases])
            self.matrix = self.vectorizer.transform(all_names)
        else:
            self.matrix = self.vectorizer.fit_transform(all_names)
        self.row = {n: i for i, n in enumerate(all_names)}
        self.aliases_of: Dict[Tuple[Optional[str], str], List[str]] = {}
        for text, name, group in self.aliases:
            self.aliases_of.setdefault((group, name), []).append(text)
            if group is not None:
                self.aliases_of.setdefault((None, name), []).append(text)
        alias_matrix = (self.vectorizer.transform([clean_name(a[0]) for a in self.aliases])
                        if self.aliases else None)
        self.names: Dict[Optional[str], List[str]] = {}
        self.matrices = {}
        for g in [None] + list(kb.groups):
            names = all_names if g is None else kb.names(g)
            rows = np.asarray([self.row[n] for n in names], dtype=np.int64)
            mat = self.matrix if g is None else self.matrix[rows]
            names = list(names)
            if alias_matrix is not None:
                idx = [i for i, a in enumerate(self.aliases) if g is None or a[2] == g]
                if idx:
                    mat = sp.vstack([mat, alias_matrix[idx]], format="csr")
                    names += [self.aliases[i][1] for i in idx]
            self.names[g] = names
            self.matrices[g] = mat.T.tocsr()

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
            names = self.names[g]
            # aliases repeat names: look deeper, keep each name's best column
            k = min(n if not self.aliases else 4 * n, sims.shape[1])
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            for qi, row, cand in zip(idx, sims, top):
                cand = cand[np.argsort(-row[cand], kind="stable")]
                best: Dict[str, float] = {}
                for j in cand:
                    if names[j] not in best:
                        best[names[j]] = float(row[j])
                        if len(best) == n:
                            break
                out[qi] = list(best.items())
        return out

    def similarity(self, mention: str, names: Sequence[str],
                   group: Optional[str] = None) -> List[float]:
        """Cosine between a mention and some names (indexed or not); with aliases, a name
        scores the best cosine of itself and its aliases in ``group`` (as in :meth:`top`)."""
        if not names:
            return []
        extra = [(i, a) for i, n in enumerate(names)
                 for a in self.aliases_of.get((group, n), ())] if self.aliases else []
        vecs = self.vectorizer.transform([clean_name(mention)] + list(names)
                                         + [clean_name(a) for _, a in extra])
        sims = (vecs[1:] @ vecs[0].T).toarray().ravel()
        best = sims[:len(names)].copy()
        for (i, _), sim in zip(extra, sims[len(names):]):
            best[i] = max(best[i], sim)
        return best.tolist()
