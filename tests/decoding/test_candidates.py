"""The TF-IDF candidate index, with and without training-mention aliases."""
import spacy

from spacy_syncabel.decoding.candidates import CandidateIndex
from spacy_syncabel.training.examples import TrainExample, mention_aliases


def test_top_without_aliases_ranks_names_by_cosine(small_kb):
    index = CandidateIndex(small_kb)
    top = index.top(["dolor de cabeza intenso"], ["SINTOMA"], 3)[0]
    assert top[0][0] == "dolor de cabeza"
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    assert all(small_kb.lookup(n, "SINTOMA") for n, _ in top)


def test_aliases_retrieve_their_name_and_raise_its_prior(small_kb):
    plain = CandidateIndex(small_kb)
    # "jaqueca" shares no char 3-gram with the names; as an alias it finds dolor de cabeza
    assert plain.top(["jaqueca"], ["SINTOMA"], 1)[0][0][1] < 0.2
    index = CandidateIndex(small_kb, [("jaqueca", "dolor de cabeza", "SINTOMA"),
                                      ("no es un nombre", "nombre inexistente", "SINTOMA")])
    assert len(index.aliases) == 1  # aliases of names the KB lacks are dropped
    top = index.top(["jaqueca"], ["SINTOMA"], 3)[0]
    assert top[0][0] == "dolor de cabeza" and top[0][1] > 0.99
    assert len({n for n, _ in top}) == len(top)  # a name once, at its best cosine
    sims = index.similarity("jaqueca", ["dolor de cabeza", "fiebre"], "SINTOMA")
    assert sims[0] > 0.99 and sims[1] < 0.2
    assert plain.similarity("jaqueca", ["dolor de cabeza"])[0] < 0.2
    # aliases stay in their group; the all-groups search sees them too
    assert index.top(["jaqueca"], ["PROCEDIMIENTO"], 1)[0][0][0] != "dolor de cabeza"
    assert index.top(["jaqueca"], [None], 1)[0][0][0] == "dolor de cabeza"


def _example(mention, completion, code="25064002", group="SINTOMA", source="real"):
    return TrainExample([1, 2], [-100, 2], "p", completion, mention, code, group, "d", source)


def test_mention_aliases_keep_the_majority_target():
    examples = [_example("Cefalalgia", "cefalea"), _example("cefalalgia", "cefalea"),
                _example("cefalalgia", "dolor de cabeza"), _example("cefalea", "cefalea"),
                _example("HTA", "HTA", source="kb_name"),
                _example("dolor y fiebre", "dolor<SEP>fiebre", code="1+2")]
    assert mention_aliases(examples) == [("Cefalalgia", "cefalea", "SINTOMA")]


def test_linker_saves_and_loads_its_aliases(tiny_lm, small_kb, tmp_path):
    nlp = spacy.blank("es")
    linker = nlp.add_pipe("syncabel_linker", config={"candidates": 3, "prior_weight": 5.0,
                                                      "mode": "rerank"})
    linker.set_model(tiny_lm[0], tiny_lm[1], small_kb)
    linker.set_aliases([("jaqueca", "dolor de cabeza", "SINTOMA")])
    assert linker.candidate_index.top(["jaqueca"], ["SINTOMA"], 1)[0][0][0] == "dolor de cabeza"
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p").get_pipe("syncabel_linker")
    assert loaded.aliases == [("jaqueca", "dolor de cabeza", "SINTOMA")]
    text = "Refiere jaqueca desde ayer."
    doc = spacy.blank("es").make_doc(text)
    start = text.index("jaqueca")
    doc.ents = [doc.char_span(start, start + 7, label="SINTOMA")]
    doc = loaded(doc)
    names = [c["name"] for c in doc.ents[0]._.syncabel]
    assert "dolor de cabeza" in names
