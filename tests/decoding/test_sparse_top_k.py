"""Sparse top-k retrieval gives what sorting the dense cosine rows gives, without them."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.decoding.candidates import CandidateIndex, sparse_top_k
from spacy_syncabel.evaluation import TfidfLinker

from ..conftest import DATA, needs_data


def dense_top_k(index, mentions, group, k):
    """The dense path: every cosine of the row, sorted by decreasing cosine, ties by column."""
    sims = index.similarities(mentions, group)
    out = []
    for row in sims:
        order = np.argsort(-row, kind="stable")[:k]
        out.append((order, row[order]))
    return out


def assert_same(got, want):
    assert len(got) == len(want)
    for (cols, sims), (dcols, dsims) in zip(got, want):
        assert cols.tolist() == dcols.tolist()
        assert sims.tolist() == dsims.tolist()


@pytest.fixture(scope="module")
def spaccc_mentions():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = read_corpus(DATA / "spaccc" / "train.tsv")
    mentions = [(d.text[m.start:m.end], m.label) for d in docs[:12] for m in d.mentions]
    # no shared 3-gram (all cosines 0: the row is padded) and an empty mention
    return mentions + [("xq", "SINTOMA"), ("", None)]


@pytest.fixture(scope="module")
def spaccc_index(spaccc_kb):
    return CandidateIndex(spaccc_kb)


@needs_data
def test_sparse_equals_dense_on_the_spaccc_kb(spaccc_kb, spaccc_index, spaccc_mentions):
    index = spaccc_index
    assert len(spaccc_mentions) > 200
    mentions, groups = [m for m, _ in spaccc_mentions], [g for _, g in spaccc_mentions]
    for group in [None, *spaccc_kb.groups]:
        want = dense_top_k(index, mentions, group, 40)  # its prefixes are the smaller k's
        for k in (1, 5, 40):
            assert_same(index.top_columns(mentions, group, k),
                        [(c[:k], s[:k]) for c, s in want])
        if group is None:  # one query per product (the smallest budget) changes nothing
            queries = index.vectorizer.transform(mentions)
            assert_same(sparse_top_k(queries, index.matrices[group], 40, budget=1), want)
        # names: the dense top-k's columns, a name once
        at = [i for i, g in enumerate(groups) if index.group_of_query(g) == group]
        top = index.top([mentions[i] for i in at], [group] * len(at), 5)
        for i, cands in zip(at, top):
            cols, sims = want[i]
            assert cands == [(index.names[group][j], float(s))
                             for j, s in zip(cols[:5], sims[:5])]


@needs_data
def test_baseline_links_as_the_dense_sort(spaccc_kb, spaccc_index, spaccc_mentions):
    linker = TfidfLinker(spaccc_kb, spaccc_index)
    mentions, groups = [m for m, _ in spaccc_mentions], [g for _, g in spaccc_mentions]
    got = linker.link(mentions, groups, k=5)
    dense = {g: linker.index.similarities(mentions, linker.index.group_of_query(g))
             for g in set(groups)}
    for i, (group, codes) in enumerate(zip(groups, got)):
        g = linker.index.group_of_query(group)
        sims = dense[group][i]
        want = []
        for j in np.argsort(-sims, kind="stable")[:20]:  # the dense path it replaces
            code = spaccc_kb.lookup(linker.index.names[g][j], g)
            if code and code not in want:
                want.append(code)
        assert codes == want[:5]


def test_ties_go_to_the_lower_column():
    # names 1, 3 and 4 have the same char 3-grams as the query: exact ties
    names = ["dolor torácico", "dolor agudo", "zzz", "agudo dolor", "dolor agudo"]
    matrix = sp.csr_matrix(np.array([[0.0, 0.5, 0.0, 0.5, 0.5],
                                     [0.2, 0.5, 0.0, 0.5, 0.5]], dtype=np.float32))
    query = sp.csr_matrix(np.array([[1.0, 1.0]], dtype=np.float32))
    (cols, sims), = sparse_top_k(query, matrix, 3)
    assert cols.tolist() == [1, 3, 4] and sims.tolist() == [1.0, 1.0, 1.0]
    (cols, sims), = sparse_top_k(query, matrix, 5)
    assert cols.tolist() == [1, 3, 4, 0, 2]  # then 0.2, then the zero column
    assert len(names) == matrix.shape[1]
    (cols, _), = sparse_top_k(sp.csr_matrix((1, 2), dtype=np.float32), matrix, 2)
    assert cols.tolist() == [0, 1]  # no overlap at all: the lowest columns
