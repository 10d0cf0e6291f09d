"""The dictionary span proposer on real SPACCC notes: training mentions and KB names found in
held-out notes, beside (never over) an NER's entities."""
import warnings

import pytest
import spacy
from spacy.training import Example

from spacy_syncabel.recognition import PhraseDictionary, build_dictionary, fold
from spacy_syncabel.recognition.dictionary import phrase_key
from spacy_syncabel.recognition.proposer import FACTORY, add_dictionary_proposer

from ..conftest import DATA, needs_data

pytestmark = needs_data


@pytest.fixture(scope="module")
def spaccc_docs():
    from spacy_syncabel.corpus import read_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_corpus(DATA / "spaccc" / "train.tsv")


@pytest.fixture(scope="module")
def held_out(spaccc_docs):
    """30 notes annotated for all three layers, kept out of the dictionary."""
    return [d for d in spaccc_docs if len(d.annotated_labels or ()) == 3][-30:]


@pytest.fixture(scope="module")
def train_docs(spaccc_docs, held_out):
    ids = {d.id for d in held_out}
    return [d for d in spaccc_docs if d.id not in ids]


@pytest.fixture(scope="module")
def proposer_nlp(train_docs, spaccc_kb, held_out):
    """An entity ruler standing in for the NER (a few gold mentions of each held-out note),
    then the proposer built from the other notes and the KB."""
    nlp = spacy.blank("es")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": m.label, "pattern": d.text[m.start:m.end]}
                        for d in held_out for m in d.mentions[::4]])
    add_dictionary_proposer(nlp, train_docs, kb=spaccc_kb,
                            labels=["ENFERMEDAD", "PROCEDIMIENTO", "SINTOMA"])
    return nlp


def test_fold_and_longest_match_first():
    d = PhraseDictionary()
    for phrase, label in (("dolor", "SINTOMA"), ("dolor abdominal", "SINTOMA"),
                          ("neumonia", "ENFERMEDAD")):
        d.add(phrase, label)
    assert fold("Neumonía") == "neumonia" and phrase_key(["Dolor", "Abdominal"]) in d
    tokens = "Refiere DOLOR abdominal , dolor y neumonía .".split()
    assert d.find(tokens) == [(1, 3, "SINTOMA"), (4, 5, "SINTOMA"), (6, 7, "ENFERMEDAD")]


def test_finds_dictionary_phrases_and_never_overlaps_the_ner(proposer_nlp, held_out):
    proposer = proposer_nlp.get_pipe(FACTORY)
    ruler_only = spacy.blank("es")
    ruler_only.add_pipe("entity_ruler", source=proposer_nlp)
    added = right = 0
    for note in held_out:
        before = ruler_only(note.text).ents
        doc = proposer_nlp(note.text)
        kept = {(e.start, e.end, e.label_) for e in doc.ents}
        assert {(e.start, e.end, e.label_) for e in before} <= kept  # the NER's stay as they are
        gold = {(m.start, m.end, m.label) for m in note.mentions}
        for e in doc.ents:
            if (e.start, e.end, e.label_) in {(b.start, b.end, b.label_) for b in before}:
                continue
            added += 1
            assert not any(b.start < e.end and e.start < b.end for b in before)
            assert proposer.dictionary.entries[phrase_key(t.text for t in e)] == e.label_
            right += (e.start_char, e.end_char, e.label_) in gold
    assert added > 50
    # phrases kept for their training precision (>= 0.5) are mostly gold mentions in unseen
    # notes (65% here)
    assert right / added > 0.5


def test_precision_filter_keeps_only_precise_phrases(train_docs):
    nlp = spacy.blank("es")
    docs = train_docs[:200]
    loose = build_dictionary(nlp.make_doc, docs, min_precision=0.0)
    strict = build_dictionary(nlp.make_doc, docs, min_precision=0.8)
    assert set(strict.entries) < set(loose.entries)
    for key in strict.entries:
        right, found = strict.stats[key]
        assert found and right / found >= 0.8


def test_saved_and_loaded_proposer_finds_the_same_spans(proposer_nlp, held_out, tmp_path):
    from spacy_syncabel.training.pipeline_io import load_pipeline

    proposer_nlp.to_disk(tmp_path / "p")
    assert (tmp_path / "p" / FACTORY / "dictionary.json").is_file()
    loaded = load_pipeline(tmp_path / "p")
    for note in held_out[:10]:
        assert [(e.start, e.end, e.label_) for e in loaded(note.text).ents] == \
               [(e.start, e.end, e.label_) for e in proposer_nlp(note.text).ents]
    restored = load_pipeline(tmp_path / "p")
    restored.get_pipe(FACTORY).from_bytes(proposer_nlp.get_pipe(FACTORY).to_bytes())
    assert restored.get_pipe(FACTORY).dictionary.entries == \
        proposer_nlp.get_pipe(FACTORY).dictionary.entries
    (tmp_path / "p" / FACTORY / "dictionary.json").unlink()
    with pytest.raises(ValueError, match="E541"):
        load_pipeline(tmp_path / "p")


def test_initialize_from_examples_and_spans_key(held_out):
    nlp = spacy.blank("es")
    nlp.add_pipe(FACTORY, config={"spans_key": "proposed", "min_precision": 0.0})
    examples = []
    for note in held_out[:20]:
        doc = nlp.make_doc(note.text)
        ents = [doc.char_span(m.start, m.end, label=m.label) for m in note.mentions]
        ref = nlp.make_doc(note.text)
        ref.ents = spacy.util.filter_spans([e for e in ents if e is not None])
        examples.append(Example(nlp.make_doc(note.text), ref))
    nlp.initialize(lambda: examples)
    doc = nlp(held_out[0].text)
    assert len(doc.spans["proposed"]) >= len(doc.ents) > 0


def test_uninitialized_proposer_says_how_to_fix_it():
    nlp = spacy.blank("es")
    nlp.add_pipe(FACTORY)
    with pytest.raises(ValueError, match="E540"):
        nlp("Dolor abdominal.")
