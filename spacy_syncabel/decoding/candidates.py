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

#: Entries (float32 cosine + int32 column) of one sparse product of a batch of queries: the
#: queries are multiplied in slices whose product can hold no more (~32 MB).
PRODUCT_BUDGET = 1 << 22


def _row_top_k(sims: np.ndarray, cols: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of one row's nonzero cosines: decreasing cosine, ties by column."""
    if len(sims) > k:
        kth = np.partition(sims, len(sims) - k)[len(sims) - k]  # the k-th largest cosine
        keep = sims >= kth  # ties at the k-th value all stay, the sort below decides
        sims, cols = sims[keep], cols[keep]
    order = np.lexsort((cols, -sims))[:k]
    return cols[order], sims[order]


def _pad_with_zeros(cols: np.ndarray, sims: np.ndarray, k: int, n_cols: int,
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Fill a row with fewer than ``k`` nonzero cosines up to ``k`` with the lowest columns
    of cosine 0 (as the dense row sorted by cosine then column gives)."""
    need = min(k, n_cols) - len(cols)
    if need <= 0:
        return cols, sims
    present = set(cols.tolist())
    pad: List[int] = []
    j = 0
    while len(pad) < need:
        if j not in present:
            pad.append(j)
        j += 1
    return (np.concatenate([cols, np.asarray(pad, dtype=cols.dtype)]),
            np.concatenate([sims, np.zeros(need, dtype=sims.dtype)]))


def sparse_top_k(queries: sp.csr_matrix, matrix: sp.csr_matrix, k: int,
                 budget: int = PRODUCT_BUDGET) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Per query row, the ``k`` best columns of ``queries @ matrix`` and their values, best
    first (decreasing value, ties by lower column; rows with fewer than ``k`` nonzeros are
    completed with the lowest zero columns): the order of a dense row sorted stably by
    decreasing value, computed from the sparse product only.

    Memory: the queries are multiplied in slices whose product has at most ``budget``
    entries (bounded by the posting lengths of their n-grams), and each row's top ``k`` is
    taken among its nonzeros, so no mentions × names array is ever built (a dense batch of 64
    mentions over 3M names is 768 MB).
    """
    queries = queries.tocsr()
    n_cols = matrix.shape[1]
    k = min(k, n_cols)
    if k <= 0:
        empty = (np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32))
        return [empty for _ in range(queries.shape[0])]
    postings = np.diff(matrix.indptr).astype(np.int64)
    cum = np.concatenate([[0], np.cumsum(postings[queries.indices])])
    bounds = np.minimum(cum[queries.indptr[1:]] - cum[queries.indptr[:-1]], n_cols)
    out: List[Tuple[np.ndarray, np.ndarray]] = []
    start = 0
    n_rows = queries.shape[0]
    while start < n_rows:
        stop, total = start + 1, int(bounds[start])
        while stop < n_rows and total + bounds[stop] <= budget:
            total += int(bounds[stop])
            stop += 1
        product = (queries[start:stop] @ matrix).tocsr()
        ptr = product.indptr
        for r in range(stop - start):
            cols, sims = _row_top_k(product.data[ptr[r]:ptr[r + 1]],
                                    product.indices[ptr[r]:ptr[r + 1]], k)
            out.append(_pad_with_zeros(cols, sims, k, n_cols))
        del product
        start = stop
    return out


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
        """Dense cosines, mentions × the group's names: mentions × names × 4 bytes, so for
        small groups and checks only; retrieval uses :meth:`top_columns`."""
        queries = self.vectorizer.transform([clean_name(m) for m in mentions])
        return (queries @ self.matrices[group]).toarray()

    def top_columns(self, mentions: Sequence[str], group: Optional[str], k: int,
                    ) -> List[Tuple[np.ndarray, np.ndarray]]:
        """For each mention, ``(columns, cosines)`` of its ``k`` best columns of the group's
        matrix, best first: what sorting a dense row by decreasing cosine (ties: lower column
        first) gives, without the dense row (:func:`sparse_top_k`)."""
        queries = self.vectorizer.transform([clean_name(m) for m in mentions])
        return sparse_top_k(queries, self.matrices[group], k)

    def top(self, mentions: Sequence[str], groups: Sequence[Optional[str]], n: int,
            ) -> List[List[Tuple[str, float]]]:
        """For each mention, up to ``n`` (name, cosine) pairs, best first (ties: the name's
        lower column first)."""
        out: List[List[Tuple[str, float]]] = [[] for _ in mentions]
        by_group: Dict[Optional[str], List[int]] = {}
        for i, g in enumerate(groups):
            by_group.setdefault(self.group_of_query(g), []).append(i)
        for g, idx in by_group.items():
            names = self.names[g]
            # aliases repeat names: look deeper, keep each name's best column
            k = n if not self.aliases else 4 * n
            for qi, (cols, sims) in zip(idx, self.top_columns([mentions[i] for i in idx], g, k)):
                best: Dict[str, float] = {}
                for j, sim in zip(cols.tolist(), sims.tolist()):
                    if names[j] not in best:
                        best[names[j]] = sim
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
