"""syncabel_span_union: the linker's span group from doc.ents and a span categorizer's group."""
import warnings

import pytest
import spacy
from spacy.tokens import Span

from spacy_syncabel.recognition.span_union import FACTORY, nests

TEXT = "Adenocarcinoma de pulmón con metástasis óseas y carcinoma ductal in situ de mama."


def _doc(nlp, ents, source):
    """A doc whose doc.ents and doc.spans['sc'] are the given (phrase, label) pairs."""
    doc = nlp.make_doc(TEXT)

    def span(phrase, label):
        start = TEXT.index(phrase)
        return doc.char_span(start, start + len(phrase), label=label)

    doc.ents = [span(p, lab) for p, lab in ents]
    doc.spans["sc"] = [span(p, lab) for p, lab in source]
    return doc


ENTS = [("Adenocarcinoma de pulmón", "M"), ("metástasis óseas", "M"),
        ("carcinoma ductal in situ de mama", "M")]
SOURCE = [("Adenocarcinoma", "M"),  # nests in an entity
          ("Adenocarcinoma de pulmón", "M"),  # an entity again: written once
          ("metástasis", "M"),  # nests in an entity
          ("carcinoma ductal in situ", "M"),  # nests in an entity
          ("óseas y carcinoma", "M"),  # crosses two entities: nests in none
          ("mama", "X")]  # nests in an entity, another label


@pytest.mark.parametrize("keep, expected", [
    ("nested", [e for e, _ in ENTS] + ["Adenocarcinoma", "metástasis",
                                       "carcinoma ductal in situ", "mama"]),
    ("all", [e for e, _ in ENTS] + ["Adenocarcinoma", "metástasis", "carcinoma ductal in situ",
                                    "óseas y carcinoma", "mama"]),
    ("source", [s for s, _ in SOURCE]),
])
def test_keep_rules(keep, expected):
    nlp = spacy.blank("es")
    union = nlp.add_pipe(FACTORY, config={"keep": keep, "spans_key": "mentions"})
    doc = union(_doc(nlp, ENTS, SOURCE))
    group = doc.spans["mentions"]
    assert sorted(s.text for s in group) == sorted(expected)
    assert len({(s.start, s.end, s.label_) for s in group}) == len(group)
    assert [(s.start, s.end) for s in group] == sorted((s.start, s.end) for s in group)
    assert [e.text for e in doc.ents] == [e for e, _ in ENTS]  # entities untouched


def test_nests():
    nlp = spacy.blank("es")
    doc = nlp.make_doc(TEXT)
    assert nests(Span(doc, 0, 1), Span(doc, 0, 3)) and nests(Span(doc, 0, 3), Span(doc, 1, 2))
    assert not nests(Span(doc, 0, 3), Span(doc, 0, 3))  # the same span
    assert not nests(Span(doc, 0, 3), Span(doc, 2, 5))  # crossing


def test_bad_settings_and_a_missing_source_group():
    nlp = spacy.blank("es")
    with pytest.raises(ValueError, match="E670"):
        nlp.add_pipe(FACTORY, name="a", config={"keep": "longest"})
    with pytest.raises(ValueError, match="E671"):
        nlp.add_pipe(FACTORY, name="b", config={"source_key": "sc", "spans_key": "sc"})
    union = nlp.add_pipe(FACTORY, name="c")
    doc = nlp.make_doc(TEXT)
    doc.ents = [doc.char_span(0, len("Adenocarcinoma"), label="M")]
    with pytest.warns(UserWarning, match="W670"):
        union(doc)
    assert [s.text for s in doc.spans["mentions"]] == ["Adenocarcinoma"]
    with warnings.catch_warnings():  # once per component
        warnings.simplefilter("error")
        union(nlp.make_doc(TEXT))
