import random
import warnings

import pytest

from spacy_syncabel.kb import ConceptKB
from spacy_syncabel.text import clean_name
from spacy_syncabel.kb.concept_kb import fast_clean_name


def build(entries, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ConceptKB(entries, **kw)


def test_basic_access():
    kb = build([
        ("C1", "heart  attack", "Disorders"),
        ("C1", "myocardial infarction", "Disorders"),
        ("C2", "aspirin", "Chemicals"),
        ("C2", "aspirin", "Chemicals"),  # exact duplicate
        ("C3", "[x]{y}", "Chemicals"),
    ], preferred={"C1": "myocardial infarction"}, definitions={"C2": "a drug"}, source="t")
    assert kb.groups == ["Chemicals", "Disorders"]
    assert kb.codes == {"C1", "C2", "C3"}
    assert len(kb) == 3 and "C1" in kb and "C4" not in kb
    assert kb.report["duplicate_rows"] == 1
    assert kb.names("Disorders") == ["heart attack", "myocardial infarction"]
    assert kb.names() == ["(x)(y)", "aspirin", "heart attack", "myocardial infarction"]
    assert kb.lookup(" heart\tattack ") == "C1"
    assert kb.lookup("heart attack", group="Chemicals") is None
    assert kb.lookup("[x]{y}") == "C3"
    assert kb.names_of("C1") == ["heart attack", "myocardial infarction"]
    assert kb.preferred_name("C1") == "myocardial infarction"
    assert kb.preferred_name("C2") == "aspirin"
    assert kb.definition("C2") == "a drug" and kb.definition("C1") is None
    assert kb.groups_of("C2") == ["Chemicals"]
    assert list(kb.entries("Chemicals")) == [("C3", "(x)(y)", "Chemicals"),
                                              ("C2", "aspirin", "Chemicals")]
    assert len(kb.fingerprint()) == 64


def test_unique_name_kept_and_ambiguous_dropped():
    entries = [("A", "cold", "D"), ("A", "common cold", "D"), ("B", "cold", "D"),
               ("B", "chill", "D")]
    with pytest.warns(UserWarning, match="W001"):
        kb = ConceptKB(entries)
    assert kb.lookup("cold") is None
    assert kb.names_of("A") == ["common cold"] and kb.names_of("B") == ["chill"]
    assert kb.synonyms_of("A") == ["cold", "common cold"]
    assert kb.report["groups"]["D"]["dropped_names"] == [("cold", ["A", "B"])]
    assert kb.report["groups"]["D"]["nameless_codes"] == []


def test_same_name_in_other_group_is_not_ambiguous():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kb = ConceptKB([("A", "cold", "G1"), ("B", "cold", "G2")])
    assert kb.lookup("cold", "G1") == "A" and kb.lookup("cold", "G2") == "B"
    assert kb.lookup("cold") == "A"  # first group in sorted order


def test_nameless_code_recovers_name():
    # C has only "cold", shared with A (which has its own unique name) -> C gets "cold"
    entries = [("A", "cold", "D"), ("A", "acute rhinitis", "D"), ("C", "cold", "D")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing dropped: no warning
        kb = ConceptKB(entries)
    assert kb.lookup("cold") == "C"
    assert kb.names_of("A") == ["acute rhinitis"]


@pytest.mark.parametrize("seed", range(5))
def test_ties_broken_deterministically(seed):
    entries = [("B", "x", "D"), ("A", "x", "D"), ("A", "y", "D"), ("B", "y", "D"),
               ("C", "x", "D"), ("E", "z", "D"), ("F", "z", "D")]
    ref = build(entries)
    shuffled = entries[:]
    random.Random(seed).shuffle(shuffled)
    kb = build(shuffled)
    assert kb.fingerprint() == ref.fingerprint()
    # sorted nameless codes take their smallest free name: A<-x, B<-y, E<-z
    assert kb.lookup("x") == "A" and kb.lookup("y") == "B" and kb.lookup("z") == "E"
    rep = kb.report["groups"]["D"]
    assert rep["nameless_codes"] == ["C", "F"]
    assert rep["dropped_names"] == []


def test_fast_clean_matches_clean_name():
    samples = ["a  b", " x\u00a0y ", "[a]{b}", "e\u0301t\u00e9", "tab\there", "zw\u200bsp",
               "ctrl\x07c", "línea\u2028dos", ""]
    for s in samples:
        assert fast_clean_name(s) == clean_name(s)


def test_round_trip(tmp_path):
    kb = build([("A", "x", "D"), ("B", "x", "D"), ("A", "w", "D"), ("C", "v", "E")],
               preferred={"A": "w"}, definitions={"C": "def"}, source="src",
               aliases={"A2": "A"})
    kb.to_disk(tmp_path / "kb")
    assert (tmp_path / "kb" / "kb.jsonl").exists()
    kb2 = ConceptKB.from_disk(tmp_path / "kb")
    assert kb2.fingerprint() == kb.fingerprint()
    assert kb2.preferred_name("A") == "w" and kb2.definition("C") == "def"
    assert kb2.source == "src" and kb2.canonical_code("A2") == "A"
    assert kb2.synonyms_of("A") == kb.synonyms_of("A")
    kb3 = build([]).from_disk(tmp_path / "kb")  # spaCy style, in place
    assert kb3.fingerprint() == kb.fingerprint()
    kb4 = build([]).from_bytes(kb.to_bytes())
    assert kb4.fingerprint() == kb.fingerprint() and kb4.report == kb.report


def test_100k_names():
    rng = random.Random(0)
    entries = [(f"C{i // 3}", f"name {rng.randrange(90000)} kind {i % 7}", f"G{i % 3}")
               for i in range(100_000)]
    kb = build(entries)  # its build time is benchmarks/bench_trie.py's business
    assert len(kb) > 30000
