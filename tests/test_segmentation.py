"""The syncabel_sentencizer: SynCABEL's sentences (line breaks, then punctuation rules)."""
from collections import defaultdict

import pytest
import spacy

from spacy_syncabel.segmentation import sentence_starts

from .conftest import DATA, needs_data


def _sents(text, **kw):
    starts = sentence_starts(text, **kw) + [len(text)]
    return [text[a:b].strip() for a, b in zip(starts, starts[1:])]


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("es")
    nlp.add_pipe("syncabel_sentencizer")
    return nlp


@pytest.mark.parametrize("text,expected", [
    # line breaks always end a sentence; blank lines give nothing
    ("Antecedentes personales\n\n- HTA.\n- DM tipo 2",
     ["Antecedentes personales", "- HTA.", "- DM tipo 2"]),
    # a period before a capital, a digit or a bullet ends a sentence
    ("Se inició tratamiento. 2 meses después ingresa. - Fiebre alta.",
     ["Se inició tratamiento.", "2 meses después ingresa.", "- Fiebre alta."]),
    # decimals and inner periods are not ends; lower case after a period is not a start
    ("Peso 3.5 kg y 0,15 de AV. Se pautaron 1000 mg i.v. y después 100 mg/8 h.",
     ["Peso 3.5 kg y 0,15 de AV.", "Se pautaron 1000 mg i.v. y después 100 mg/8 h."]),
    # abbreviations and initials before a capital
    ("Valorada por el Dr. García en la C. Externa por infección por C. albicans. Mejoró.",
     ["Valorada por el Dr. García en la C. Externa por infección por C. albicans.",
      "Mejoró."]),
    # closing brackets and quotes stay with their sentence; ! and ? end sentences
    ('Refiere "dolor intenso." Niega fiebre (ver Fig. 2). ¿Alergias? No conocidas!',
     ['Refiere "dolor intenso."', "Niega fiebre (ver Fig. 2).", "¿Alergias?",
      "No conocidas!"]),
    # a run of periods does not end a sentence
    ("Carga viral en trámite.. Se inició TARGA.", ["Carga viral en trámite.. Se inició TARGA."]),
])
def test_sentence_rules(text, expected):
    assert _sents(text) == expected


def test_blank_and_empty_texts():
    assert sentence_starts("") == []
    assert sentence_starts(" \n\n ") == []
    assert sentence_starts("  Fiebre.") == [2]


def test_abbreviation_settings(nlp):
    text = "Dosis de 5 mg. Tras la ingesta mejoró."
    assert len(_sents(text)) == 2
    assert _sents(text, abbreviations=["mg."]) == [text]
    custom = spacy.blank("es")
    custom.add_pipe("syncabel_sentencizer", config={"extra_abbreviations": ["mg"]})
    assert len(list(custom(text).sents)) == 1
    assert len(list(nlp(text).sents)) == 2
    bad = spacy.blank("es")
    with pytest.raises(ValueError, match="E180"):
        bad.add_pipe("syncabel_sentencizer", config={"extra_abbreviations": ["p. ej."]})


def test_component_sets_token_sentence_starts(nlp):
    text = "Varón de 54 años con HTA.\nAcude por fiebre. Se realiza TAC."
    doc = nlp(text)
    assert [s.text.strip() for s in doc.sents] == ["Varón de 54 años con HTA.",
                                                   "Acude por fiebre.", "Se realiza TAC."]
    assert doc.has_annotation("SENT_START")


def test_never_starts_a_sentence_inside_an_entity(nlp):
    text = "Se observa dolor. Torácico y disnea."
    doc = nlp.make_doc(text)
    start = text.index("dolor")
    doc.ents = [doc.char_span(start, text.index("Torácico") + len("Torácico"), label="SINTOMA")]
    doc = nlp.get_pipe("syncabel_sentencizer")(doc)
    assert len(list(doc.sents)) == 1
    assert len(list(nlp(text).sents)) == 2  # without the entity the period ends the sentence


def test_overwrite_false_keeps_existing_sentences():
    nlp = spacy.blank("es")
    nlp.add_pipe("syncabel_sentencizer", config={"overwrite": False})
    doc = nlp.make_doc("Uno dos. Tres cuatro.")
    for tok in doc:
        tok.is_sent_start = tok.i in (0, 1)
    doc = nlp.get_pipe("syncabel_sentencizer")(doc)
    assert [s.text for s in doc.sents] == ["Uno", "dos. Tres cuatro."]


def test_saved_and_loaded_with_its_config(tmp_path):
    nlp = spacy.blank("es")
    nlp.add_pipe("syncabel_sentencizer", config={"extra_abbreviations": ["mg"]})
    nlp.to_disk(tmp_path / "seg")
    loaded = spacy.load(tmp_path / "seg")
    assert loaded.pipe_names == ["syncabel_sentencizer"]
    assert len(list(loaded("Dosis de 5 mg. Tras la ingesta mejoró.").sents)) == 1
    scores = loaded.evaluate([spacy.training.Example(loaded("Uno. Dos."), nlp("Uno. Dos."))])
    assert scores["sents_f"] == 1.0


@needs_data
def test_agrees_with_the_published_spaccc_sentences(nlp):
    """The published test_half sentences, per document in text order joined by one space:
    the sentences stay whole and the boundaries between them are found."""
    from spacy_syncabel.tsv import iter_tsv
    from spacy_syncabel.corpus.marked_tsv import unmark

    docs = defaultdict(dict)
    for _, row in iter_tsv(DATA / "spaccc" / "test_half.tsv"):
        text, start, _, _ = unmark(row["sentence"], row["label"], row["span"])
        docs[row["filename"]][(int(row["start_span"]) - start, text)] = None
    n_sents = whole = n_bounds = found = 0
    for sents in docs.values():
        sents = [t for _, t in sorted(sents)]
        offsets = [sum(len(t) + 1 for t in sents[:i]) for i in range(len(sents))]
        starts = {t.idx for t in nlp(" ".join(sents)) if t.is_sent_start}
        n_bounds += len(offsets) - 1
        found += sum(off in starts for off in offsets[1:])
        n_sents += len(sents)
        whole += sum(not any(o < s < o + len(t) for s in starts) for o, t in zip(offsets, sents))
    assert n_sents > 1600 and n_bounds > 1500
    assert whole / n_sents >= 0.98
    assert found / n_bounds >= 0.95
