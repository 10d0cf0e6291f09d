"""Property-based fuzzing (hypothesis) of the KB loaders and the linker with hostile input.

* KB rows with odd unicode (zero-width joiners, RTL marks, combining characters, emoji),
  tabs, newlines, NaN-like codes, very long and empty names go through the TSV and JSONL
  loaders: each file loads into a consistent KB or fails with a coded error ``[Ennn]``;
  nothing else may escape.
* JSONL, PubTator and brat corpora, mostly well formed with hostile fields and lines, read
  into documents whose mentions lie inside their text, or fail with a coded error.
* Docs of random tokens (KB words, odd unicode, invisible-only tokens, white space, very
  long tokens) with random, possibly overlapping, entities go through ``nlp.pipe`` of a
  small pipeline per decoding mode (tiny random Llama + small KB): nothing crashes, every
  ``kb_id_`` is a KB code, a ``+``-joined composite of KB codes, ``NIL`` or ``NO_CODE``, and
  entities made only of white space or invisible characters are ``NIL``.

Examples per test: ``FUZZ_EXAMPLES`` (default 200).
"""
import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import pytest
import spacy
from hypothesis import HealthCheck, event, given, settings, strategies as st  # test extra
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from spacy_syncabel.corpus import read_corpus
from spacy_syncabel.kb import ConceptKB, read_jsonl, read_tsv
from spacy_syncabel.kb.concept_kb import fast_clean_name
from spacy_syncabel.kb.validation import repair_code
from spacy_syncabel.types import COMPOSITE_SEP, NIL, NO_CODE

from .conftest import KB_ROWS, TEXTS, add_linker

N_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=N_EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])
CODED = re.compile(r"^\[E\d{3}\] ")

INVISIBLE = "\u200d\u200b\u200c\u200e\u200f\u2060\ufeff\u00ad\u202e"
ODD = (INVISIBLE + "\u0301\u0338\u0651\u05d0\u0627😀👩\u200d⚕️🇪🇸"  # combining, RTL, emoji
       + "\t\n\r\x00\x0b\u2028 \u00a0[]{}|+\"\\<>")
LABELS = ["ENFERMEDAD", "SINTOMA", "PROCEDIMIENTO", "OTRO"]
WORDS = sorted({w for _, name, _ in KB_ROWS for w in name.split()}
               | {w for text in TEXTS for w in text.split()})
# names of the pipeline's KB beside KB_ROWS: odd unicode that still cleans to a name
ODD_ROWS = [("900001", "dolor 😀 torácico", "SINTOMA"),
            ("900002", "mareo\u200d\u200f", "SINTOMA"),
            ("900003", "sı\u0307ndrome de Me\u0301nie\u0300re", "ENFERMEDAD"),
            ("900004", "\u05d0\u05d1 אבחנה", "ENFERMEDAD")]


# ------------------------------------------------------------------ KB rows
odd_text = st.text(alphabet=st.sampled_from(ODD) | st.characters(codec="utf-8"), max_size=12)
# friendly rows load; hostile fields (tabs, newlines, empty, anything) must give coded errors
ODD_INLINE = ODD.translate({ord(c): None for c in "\t\n\r\x0b\u2028"})
plain_odd = st.text(alphabet=st.sampled_from(ODD_INLINE)
                    | st.characters(codec="utf-8", exclude_categories=["Cc", "Zl", "Zp"]),
                    min_size=1, max_size=12)
long_names = (st.tuples(st.sampled_from(WORDS), st.integers(50, 400))
              .map(lambda t: " ".join([t[0]] * t[1])))
friendly_rows = st.tuples(
    st.sampled_from(["C1", "C2", "C3", "NaN", "nan", "007", "-1", "C1+C2", "\u03a9\u200d1"]),
    st.one_of(st.sampled_from(WORDS), plain_odd, long_names),
    st.sampled_from(["G", "H", "g\u200d", "\u05d0"]))
hostile_rows = st.tuples(
    st.one_of(st.sampled_from(["", " ", "\t"]), odd_text),
    st.one_of(st.just(""), odd_text, long_names),
    st.one_of(st.sampled_from(["", "\t", "G\tH"]), odd_text))
rows = st.tuples(st.lists(friendly_rows, min_size=1, max_size=8),
                 st.lists(hostile_rows, max_size=2)).map(lambda t: t[0] + t[1])
json_codes = st.one_of(friendly_rows.map(lambda r: r[0]), st.integers(-5, 10**12),
                       st.floats(allow_nan=True), st.none(), st.booleans(), odd_text)
json_rows = st.lists(st.tuples(st.one_of(*[friendly_rows.map(lambda r: r[0])] * 3, json_codes),
                               st.one_of(friendly_rows.map(lambda r: r[1]), st.integers(),
                                         odd_text),
                               st.one_of(friendly_rows.map(lambda r: r[2]), odd_text)),
                     min_size=1, max_size=8)


def _check_kb(kb: ConceptKB, rows, split_free: bool = True) -> None:
    """The KB is consistent and saves/loads unchanged. ``split_free``: no field holds a line
    break (which a plain TSV cannot tell from a row end), so every code, name and group of
    the KB must be one of a row: no field was split (a tab in a name) or merged."""
    assert len(kb) > 0
    for code, name, group in kb.entries():
        assert name and kb.lookup(name, group) == code
    if split_free:
        # a code is one of a row, or one with a stray separator at an end taken off (W340)
        assert kb.codes <= {str(c).strip() for c, _, _ in rows} | {
            repair_code(str(c)) for c, _, _ in rows}
        assert set(kb.groups) <= {str(g).strip() for _, _, g in rows}
        given_names = {fast_clean_name(str(n)) for _, n, _ in rows}
        assert {name for _, name, _ in kb.entries()} <= given_names
    with tempfile.TemporaryDirectory() as tmp:
        kb.to_disk(tmp)
        assert ConceptKB.from_disk(tmp).fingerprint() == kb.fingerprint()


def _load_or_coded_error(reader, path: Path):
    """The KB, or None after a coded error; any other exception fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            kb = reader(path)
        except ValueError as err:
            assert CODED.match(str(err)), f"uncoded error: {err!r}"
            assert str(path) in str(err), str(err)
            event(f"coded error {str(err)[:6]}")
            return None
    event("loaded")
    return kb


@FUZZ
@given(rows=rows)
def test_fuzz_kb_tsv(rows):
    text = "code\tname\tgroup\n" + "".join(f"{c}\t{n}\t{g}\n" for c, n, g in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kb.tsv"
        path.write_text(text, encoding="utf-8", newline="")
        kb = _load_or_coded_error(read_tsv, path)
        if kb is not None:
            breaks = any(ch in str(f) for row in rows for f in row for ch in "\r\n")
            _check_kb(kb, rows, split_free=not breaks)


@FUZZ
@given(rows=json_rows)
def test_fuzz_kb_jsonl(rows):
    text = "".join(json.dumps({"code": c, "name": n, "group": g}) + "\n" for c, n, g in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kb.jsonl"
        path.write_text(text, encoding="utf-8")
        kb = _load_or_coded_error(read_jsonl, path)
        if kb is not None:
            assert all(isinstance(c, (str, int)) and not isinstance(c, bool)
                       for c, _, _ in rows), "a float or bool code was accepted"
            _check_kb(kb, rows)


# ------------------------------------------------------------------ corpus files
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 40) | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                  max_size=3),
    max_leaves=5)
offsets = st.integers(-2, 40)


def mostly(strategy, other=json_values, n: int = 7):
    """``strategy`` about ``n`` times in ``n + 1``, else ``other`` (any JSON value).
    (``one_of`` would not do: it picks among its distinct strategies about evenly.)"""
    return st.integers(0, 99).flatmap(lambda i: other if i % (n + 1) == 3 else strategy)


@st.composite
def corpus_objs(draw):
    """A JSONL corpus line as an object: mostly well-formed, any field possibly hostile."""
    text = draw(st.text(alphabet=st.sampled_from(ODD + "abc "), min_size=1, max_size=30))
    obj = {"text": draw(mostly(st.just(text)))}
    if draw(st.booleans()):
        obj["id"] = draw(mostly(st.text(max_size=4)))
    ents = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.integers(0, len(text) - 1))
        spans = st.tuples(st.just(start), st.integers(start + 1, len(text)))
        s, e = draw(mostly(spans, st.tuples(offsets, offsets)))
        ent = {"start": draw(mostly(st.just(s))), "end": draw(mostly(st.just(e)))}
        if draw(st.booleans()):
            ent["label"] = draw(mostly(st.sampled_from(LABELS)))
        if draw(st.booleans()):
            ent["code"] = draw(mostly(st.sampled_from(["C1", "C1+C2", "NIL", "8000/6"])))
        ents.append(ent)
    obj["entities"] = draw(mostly(st.just(ents)))
    if draw(st.booleans()):
        obj["sentences"] = draw(mostly(st.just([[0, len(text)]]),
                                       st.lists(st.lists(offsets, min_size=2, max_size=2),
                                                max_size=2)))
    return json.dumps(obj, ensure_ascii=draw(st.booleans()))


pubtator_lines = st.one_of(
    st.builds(lambda pmid, kind, text: f"{pmid}|{kind}|{text}", st.sampled_from(["1", "2"]),
              st.sampled_from(["t", "a"]), st.text(alphabet=st.sampled_from(ODD + "ab "),
                                                   max_size=20)),
    st.lists(st.one_of(st.sampled_from(["1", "2", "CID", "Disease", "D1|D2", "-1"]),
                       offsets.map(str), st.text(max_size=4)), min_size=1, max_size=7)
    .map("\t".join),
    st.text(max_size=12))


def _read_or_coded_error(path: Path, fmt: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            docs = read_corpus(path, format=fmt)
        except ValueError as err:
            assert CODED.match(str(err)), f"uncoded error: {err!r}"
            assert path.name in str(err), str(err)
            event(f"coded error {str(err)[:6]}")
            return
    event("read")
    for doc in docs:
        assert isinstance(doc.id, str) and isinstance(doc.text, str)
        for m in doc.mentions:
            assert 0 <= m.start < m.end <= len(doc.text), (m, len(doc.text))
            assert isinstance(m.label, str) and (m.code is None or isinstance(m.code, str))


@FUZZ
@given(lines=st.lists(mostly(corpus_objs(), st.text(max_size=20), n=3), min_size=1,
                      max_size=4))
def test_fuzz_corpus_jsonl(lines):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        _read_or_coded_error(path, "jsonl")


@FUZZ
@given(lines=st.lists(pubtator_lines, min_size=1, max_size=8))
def test_fuzz_corpus_pubtator(lines):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.pubtator"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        _read_or_coded_error(path, "pubtator")


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(ODD + "ab "), max_size=30),
       ann=st.lists(st.one_of(
           st.builds(lambda i, lab, s, e, t: f"T{i}\t{lab} {s} {e}\t{t}", st.integers(1, 3),
                     st.sampled_from(LABELS), offsets, offsets, st.text(max_size=6)),
           st.builds(lambda i, t, c: f"#{i}\tAnnotatorNotes T{t}\t{c}", st.integers(1, 3),
                     st.integers(1, 3), st.sampled_from(["C1", "C1+C2", ""]) | st.text(max_size=4)),
           st.text(max_size=12)), max_size=5))
def test_fuzz_corpus_brat(text, ann):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "d.txt").write_text(text, encoding="utf-8", newline="")
        (Path(tmp) / "d.ann").write_text("\n".join(ann) + "\n", encoding="utf-8")
        _read_or_coded_error(Path(tmp), "brat")


# ------------------------------------------------------------------ docs
PIPES = {  # one small pipeline per decoding mode
    "beam_composite": {"composite": True},
    "beam_in_candidates": {"mode": "beam_in_candidates", "candidates": 5},
    "rerank": {"mode": "rerank", "candidates": 5, "prior_weight": 0.5},
}


@pytest.fixture(scope="module")
def fuzz_nlps(tmp_path_factory):
    """Small pipelines (tiny random Llama + small KB with odd names), built once."""
    path = tmp_path_factory.mktemp("fuzz") / "kb.tsv"
    path.write_text("code\tname\tgroup\n" + "".join(f"{c}\t{n}\t{g}\n"
                                                   for c, n, g in KB_ROWS + ODD_ROWS),
                    encoding="utf-8")
    out = {}
    for key, extra in PIPES.items():
        nlp = spacy.blank("es")
        add_linker(nlp, path, num_beams=2, n_best=2, max_new_tokens=12, batch_size=8, **extra)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nlp.initialize()
        out[key] = nlp
    return out


tokens = st.one_of(
    st.sampled_from(WORDS),
    st.text(alphabet=st.sampled_from(ODD) | st.sampled_from("abcñé"), min_size=1, max_size=6),
    st.text(alphabet=INVISIBLE, min_size=1, max_size=4),  # invisible-only tokens
    st.sampled_from([" ", "\n", "\t", "\u2028"]),
    st.tuples(st.sampled_from(WORDS), st.integers(20, 150))
    .map(lambda t: (t[0] + " ") * t[1]),  # one very long token (up to ~2,000 chars)
)


@st.composite
def docs(draw):
    words = draw(st.lists(tokens, min_size=1, max_size=14))
    spaces = draw(st.lists(st.booleans(), min_size=len(words), max_size=len(words)))
    n = len(words)
    spans = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n),
                                    st.sampled_from(LABELS)), max_size=4))
    return words, spaces, [(s, min(n, s + length), lab) for s, length, lab in spans]


def _make_doc(nlp, words, spaces, spans) -> Doc:
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    doc.ents = filter_spans([Span(doc, s, e, label=lab) for s, e, lab in spans])  # overlaps
    return doc


def _valid_code(kb, code: str) -> bool:
    if code in (NIL, NO_CODE) or code in kb.codes:
        return True
    return all(c in kb.codes for c in code.split(COMPOSITE_SEP))


@FUZZ
@given(batch=st.lists(docs(), min_size=1, max_size=4), which=st.sampled_from(sorted(PIPES)))
def test_fuzz_docs_through_the_linker(fuzz_nlps, batch, which):
    nlp = fuzz_nlps[which]
    kb = nlp.get_pipe("syncabel_linker").kb
    inputs = [_make_doc(nlp, *d) for d in batch]
    n_ents = [len(d.ents) for d in inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = list(nlp.pipe(inputs, batch_size=8))
    assert [len(d.ents) for d in out] == n_ents
    for doc in out:
        for ent in doc.ents:
            if all(ch.isspace() or ch in INVISIBLE for ch in ent.text):
                event("entity of invisible characters / white space only")
                assert ent.kb_id_ == NIL, (ent.text, ent.kb_id_)
            if len(ent.text) > 500:
                event("entity longer than 500 characters")
            assert _valid_code(kb, ent.kb_id_), (ent.text, ent.kb_id_)
            for cand in ent._.syncabel or []:
                assert _valid_code(kb, cand["code"]), (ent.text, cand)


@pytest.mark.parametrize("invisible", ["\u200d", "\u200b\u200d\u2060", "\u200f\u202e", "\ufeff"])
def test_invisible_only_entity_is_nil_with_w003(fuzz_nlps, invisible):
    nlp = fuzz_nlps["beam_composite"]
    doc = _make_doc(nlp, ["fiebre", invisible, "y", "tos"], [True] * 4, [(1, 2, "SINTOMA")])
    with pytest.warns(UserWarning, match="W003"):
        (doc,) = nlp.pipe([doc])
    assert doc.ents[0].kb_id_ == NIL


# ------------------------------------------------------------------ saved pipeline folders
@pytest.fixture
def saved_pipeline(fuzz_nlps, tmp_path):
    fuzz_nlps["beam_composite"].to_disk(tmp_path / "pipe")
    return tmp_path / "pipe"


def test_pipeline_without_kb_meta_is_a_coded_error(saved_pipeline):
    (saved_pipeline / "syncabel_linker" / "kb" / "meta.json").unlink()
    with pytest.raises(ValueError, match=r"E192.*kb is incomplete: meta.json is missing"):
        spacy.load(saved_pipeline)


def test_pipeline_with_truncated_kb_is_a_coded_error(saved_pipeline):
    kb_file = saved_pipeline / "syncabel_linker" / "kb" / "kb.jsonl"
    lines = kb_file.read_bytes().splitlines(keepends=True)
    kb_file.write_bytes(b"".join(lines[:5]) + lines[5][:9])
    with pytest.raises(ValueError, match=r"E191.*kb.jsonl, line 6: invalid JSON"):
        spacy.load(saved_pipeline)
    kb_file.write_bytes(b"".join(lines[:5]))
    with pytest.raises(ValueError, match=r"E193"):
        spacy.load(saved_pipeline)
