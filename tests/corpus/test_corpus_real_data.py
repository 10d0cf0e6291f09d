"""Tests on the real corpora in ../shared/data (skipped when it is missing)."""
import warnings
from pathlib import Path

import pytest

from spacy_syncabel.corpus import read_corpus, write_jsonl

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _need(rel: str) -> Path:
    path = DATA / rel
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


def test_spaccc_test_half_and_jsonl_round_trip(tmp_path):
    path = _need("spaccc/test_half.tsv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every marked mention matches its span column
        docs = read_corpus(path)
    mentions = [m for d in docs for m in d.mentions]
    assert len(docs) == len(mentions) == 4408
    assert sum("+" in m.code for m in mentions) == 165
    assert {m.label for m in mentions} == {"ENFERMEDAD", "SINTOMA", "PROCEDIMIENTO"}
    assert all(d.text.count("]{") == 0 for d in docs)
    out = tmp_path / "test_half.jsonl"
    write_jsonl(docs, out)
    back = read_corpus(out)
    assert [(d.id, d.text, d.mentions, d.sentences) for d in back] == \
        [(d.id, d.text, d.mentions, d.sentences) for d in docs]


def test_spaccc_train_reports_22_mismatches():
    path = _need("spaccc/train.tsv")
    _need("spaccc/texts")
    with pytest.warns(UserWarning, match=r"W004\] 22 row\(s\)"):
        docs = read_corpus(path)
    assert len(docs) == 750
    assert sum(len(d.mentions) for d in docs) == 18973 - 22
    for d in docs[:50]:
        assert all(d.text[m.start:m.end].strip() for m in d.mentions)


def test_ncbi_dev():
    docs = read_corpus(_need("ncbi-disease/NCBIdevelopset_corpus.txt"))
    mentions = [m for d in docs for m in d.mentions]
    assert len(docs) == 100 and len(mentions) == 787
    assert all(m.code and "|" not in m.code and m.code == m.code.strip() for m in mentions)
    assert sum("+" in m.code for m in mentions) == 30


def test_bc5cdr_dev():
    docs = read_corpus(_need("bc5cdr/CDR_DevelopmentSet.PubTator.txt"))
    mentions = [m for d in docs for m in d.mentions]
    assert len(docs) == 500 and len(mentions) == 9591
    assert {m.label for m in mentions} == {"Chemical", "Disease"}
    assert sum(m.code == "NIL" for m in mentions) == 59


def test_cantemist_dev1():
    docs = read_corpus(_need("cantemist/dev1"))
    mentions = [m for d in docs for m in d.mentions]
    assert len(docs) == 250 and len(mentions) == 3341
    assert all(m.code for m in mentions)
    assert all(d.text[m.start:m.end].strip() for d in docs for m in d.mentions)


def test_quaero_dev_multiple_cuis():
    docs = read_corpus(_need("quaero/dev"))
    mentions = [m for d in docs for m in d.mentions]
    assert len(mentions) == 5237
    assert sum("+" in (m.code or "") for m in mentions) == 30
    assert all(m.code is None or all(c.startswith("C") for c in m.code.split("+"))
               for m in mentions)
