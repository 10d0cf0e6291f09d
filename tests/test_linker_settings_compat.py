"""spaCy EntityLinker's setting names: ``use_gold_ents`` (and its deprecated alias
``score_gold_ents``) and ``labels_discard``, through the config, saving and ``with_settings``."""
import warnings

import pytest
import spacy

from .conftest import KB_ROWS, TEXTS, TINY, add_linker


def _pipeline(kb_tsv, **config):
    nlp = spacy.blank("es")
    ruler = nlp.add_pipe("entity_ruler")
    add_linker(nlp, kb_tsv, TINY, num_beams=2, n_best=2, max_new_tokens=16, **config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    ruler.add_patterns([{"label": group, "pattern": name} for _, name, group in KB_ROWS])
    return nlp


def _ents(doc):
    return {(e.text, e.label_): (e.kb_id_, e._.syncabel) for e in doc.ents}


def test_old_name_score_gold_ents_warns_and_survives_saving(kb_tsv, tmp_path):
    with pytest.warns(UserWarning, match="W450"):
        nlp = _pipeline(kb_tsv, score_gold_ents=True)
    assert nlp.get_pipe("syncabel_linker").use_gold_ents is True
    nlp.to_disk(tmp_path / "p")
    with pytest.warns(UserWarning, match="W450"):  # a saved config with the old name loads
        loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("syncabel_linker").use_gold_ents is True
    with pytest.warns(UserWarning, match="W450"):
        off = nlp.get_pipe("syncabel_linker").with_settings(score_gold_ents=False)
    assert off.use_gold_ents is False


def test_new_name_does_not_warn_and_conflicts_are_refused(kb_tsv):
    nlp = spacy.blank("es")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        linker = nlp.add_pipe("syncabel_linker", config={"use_gold_ents": True})
    assert linker.use_gold_ents is True and linker.cfg["use_gold_ents"] is True
    assert spacy.blank("es").add_pipe("syncabel_linker").use_gold_ents is False
    for use, score in ((False, True), (True, False)):
        with pytest.raises(ValueError, match="E450"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spacy.blank("es").add_pipe("syncabel_linker", name=f"l{use}",
                                       config={"use_gold_ents": use, "score_gold_ents": score})
    with warnings.catch_warnings():  # the same value under both names is no conflict
        warnings.simplefilter("ignore")
        same = spacy.blank("es").add_pipe("syncabel_linker",
                                          config={"use_gold_ents": True, "score_gold_ents": True})
    assert same.use_gold_ents is True


def test_labels_discard_leaves_those_entities_unlinked_after_saving(kb_tsv, tmp_path):
    nlp = _pipeline(kb_tsv, labels_discard=["SINTOMA"])
    doc = nlp(TEXTS[0])  # hipertensión arterial, diabetes... (ENFERMEDAD), fiebre (SINTOMA)
    ents = _ents(doc)
    assert {lab for _, lab in ents} == {"ENFERMEDAD", "SINTOMA"}
    for (text, label), (kb_id, nbest) in ents.items():
        if label == "SINTOMA":
            assert kb_id == "" and nbest is None, text
        else:
            assert kb_id and nbest, text
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("syncabel_linker").labels_discard == ("SINTOMA",)
    assert _ents(loaded(TEXTS[0])).keys() == ents.keys()
    assert all(kb == "" for (_, lab), (kb, _) in _ents(loaded(TEXTS[0])).items()
               if lab == "SINTOMA")
    linker = loaded.get_pipe("syncabel_linker")
    other = linker.with_settings(labels_discard=["ENFERMEDAD"], num_beams=3)
    assert other.labels_discard == ("ENFERMEDAD",) and linker.labels_discard == ("SINTOMA",)
    assert other.with_settings(n_best=1).labels_discard == ("ENFERMEDAD",)
    relinked = other(loaded.get_pipe("entity_ruler")(loaded.make_doc(TEXTS[0])))
    for (_, label), (kb_id, nbest) in _ents(relinked).items():
        assert (kb_id == "" and nbest is None) == (label == "ENFERMEDAD")
