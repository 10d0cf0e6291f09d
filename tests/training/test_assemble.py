"""ner-corpus (the NER's .spacy files and config) and assemble (segmenter + NER + linker), on tiny
pipelines built here: the project's configs/ner.cfg NER fitted to a few sentences, a tiny linker."""
import json
import random
import warnings
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import load_config, load_model_from_config

from spacy_syncabel.corpus import docs_to_spacy, write_jsonl
from spacy_syncabel.training.assemble import assemble_pipeline
from spacy_syncabel.training.ner_corpus import write_ner_corpus
from spacy_syncabel.training.pipeline_io import save_pipeline
from spacy_syncabel.training.recipe import META_KEY
from spacy_syncabel.types import CorpusDoc, GoldMention

from ..conftest import KB_ROWS, TEXTS, add_linker

ROOT = Path(__file__).resolve().parents[2]
NER_CONFIG = ROOT / "configs" / "ner.cfg"


def _gold_docs():
    """TEXTS with every KB name found in them as a mention of its group."""
    docs = []
    for i, text in enumerate(TEXTS):
        found = []
        for code, name, group in sorted(KB_ROWS, key=lambda r: -len(r[1])):
            start = text.find(name)
            if start >= 0 and not any(s < start + len(name) and start < e for s, e, *_ in found):
                found.append((start, start + len(name), group, code))
        docs.append(CorpusDoc(f"t{i}", text, [GoldMention(*m) for m in sorted(found)]))
    return docs


@pytest.fixture(scope="module")
def linker_dir(kb_tsv, tmp_path_factory):
    nlp = spacy.blank("es")
    add_linker(nlp, kb_tsv, num_beams=3, n_best=3, max_new_tokens=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    nlp.meta[META_KEY] = {"linker": {"num_beams": 3}}  # as `train` records its recipe
    return save_pipeline(nlp, tmp_path_factory.mktemp("linker") / "model-best")


@pytest.fixture(scope="module")
def ner_dir(tmp_path_factory):
    """configs/ner.cfg (tok2vec + a listening ner), fitted to the gold sentences."""
    nlp = load_model_from_config(load_config(NER_CONFIG), auto_fill=True)
    return _fit_and_save(nlp, docs_to_spacy(nlp, _gold_docs()), 40,
                         tmp_path_factory.mktemp("ner") / "model-best")


def _fit_and_save(nlp, gold, steps, path):
    """``nlp`` updated ``steps`` times on the gold docs (seeded order), saved at ``path``."""
    examples = [Example(nlp.make_doc(d.text), d) for d in gold]
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(0)
    for _ in range(steps):
        rng.shuffle(examples)
        nlp.update(examples, sgd=optimizer, drop=0.0)
    nlp.to_disk(path)
    return path


def _untrained_ner(tmp_path, lang="es", labels=("ENFERMEDAD",)):
    nlp = spacy.blank(lang)
    ner = nlp.add_pipe("ner")
    for label in labels:
        ner.add_label(label)
    nlp.initialize()
    tmp_path.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(tmp_path / "ner")
    return tmp_path / "ner"


def test_assembled_pipeline_finds_and_links_entities(linker_dir, ner_dir, tmp_path):
    out = tmp_path / "moved" / "pipeline"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = assemble_pipeline(linker_dir, ner_dir, out)
        nlp = spacy.load(out)
        ner_only = spacy.load(ner_dir)
    assert nlp.pipe_names == ["sentencizer", "tok2vec", "ner", "syncabel_linker"]
    assert info["pipeline"] == nlp.pipe_names and info["labels"] == sorted(
        {g for _, _, g in KB_ROWS})
    assert str(tmp_path) not in (out / "config.cfg").read_text(encoding="utf8")
    assert nlp.meta[META_KEY] == {"linker": {"num_beams": 3}}  # the linker's recipe, kept
    # the linker folder is left as it was: linker only
    assert spacy.util.load_config(linker_dir / "config.cfg")["nlp"]["pipeline"] == [
        "syncabel_linker"]
    text = TEXTS[0] + " " + TEXTS[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doc = nlp(text)
    assert len(list(doc.sents)) == 2
    # the NER's own entities (the segmenter splits no gold entity here), each linked in its group
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [
        (e.start_char, e.end_char, e.label_) for e in ner_only(text).ents]
    assert len(doc.ents) >= 3
    kb = nlp.get_pipe("syncabel_linker").kb
    for ent in doc.ents:
        assert ent._.syncabel and ent.kb_id_ == ent._.syncabel[0]["code"]
        assert ent.label_ in kb.groups_of(ent.kb_id_)


def test_assemble_without_segmenter_and_with_an_unknown_one(linker_dir, tmp_path):
    ner = _untrained_ner(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = assemble_pipeline(linker_dir, ner, tmp_path / "p", segmenter="none")
        assert info["pipeline"] == ["ner", "syncabel_linker"]
        with pytest.raises(ValueError, match="E203"):
            assemble_pipeline(linker_dir, ner, tmp_path / "q", segmenter="no_such_segmenter")
    assert not (tmp_path / "q").exists()


def test_assemble_replaces_an_existing_folder_only_with_force(linker_dir, tmp_path):
    ner = _untrained_ner(tmp_path)
    out = tmp_path / "pipeline"
    out.mkdir()
    (out / "notes.txt").write_text("the user's", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="E302.*--force"):
            assemble_pipeline(linker_dir, ner, out, segmenter="none")
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
        with pytest.raises(ValueError, match="E300"):  # the NER lies inside the output
            assemble_pipeline(linker_dir, ner, tmp_path, segmenter="none", force=True)
        assemble_pipeline(linker_dir, ner, out, segmenter="none", force=True)
        assert spacy.load(out).pipe_names == ["ner", "syncabel_linker"]
    assert not (out / "notes.txt").exists() and (ner / "config.cfg").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ner", "pipeline"]


def test_assemble_refuses_mismatched_parts(linker_dir, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bad_label = _untrained_ner(tmp_path / "a", labels=("ENFERMEDAD", "DISEASE"))
        with pytest.raises(ValueError, match=r"E200.*'DISEASE'"):
            assemble_pipeline(linker_dir, bad_label, tmp_path / "p")
        english = _untrained_ner(tmp_path / "b", lang="en")
        with pytest.raises(ValueError, match="E202"):
            assemble_pipeline(linker_dir, english, tmp_path / "p")
        no_ner = spacy.blank("es")
        no_ner.add_pipe("sentencizer")
        no_ner.to_disk(tmp_path / "c")
        with pytest.raises(ValueError, match="E201"):
            assemble_pipeline(linker_dir, tmp_path / "c", tmp_path / "p")
        with pytest.raises(ValueError, match="E204"):
            assemble_pipeline(tmp_path / "c", bad_label, tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_ner_corpus_maps_labels_and_sets_the_language(tmp_path):
    text = "Familial adenomatous polyposis and colorectal cancer."
    docs = [CorpusDoc("a", text, [GoldMention(0, 30, "SpecificDisease", "D011125"),
                                  GoldMention(9, 30, "Modifier", "D011125"),
                                  GoldMention(35, 52, "DiseaseClass", "D015179")])]
    write_jsonl(docs, tmp_path / "train.jsonl")
    write_jsonl([], tmp_path / "dev.jsonl")
    label_map = {"SpecificDisease": "Disease", "DiseaseClass": "Disease", "Modifier": None}
    with pytest.warns(UserWarning) as record:
        summary = write_ner_corpus(tmp_path, tmp_path / "ner", lang="en", label_map=label_map,
                                   config=NER_CONFIG)
    codes = " ".join(str(r.message) for r in record)
    assert "W040" in codes  # the nested mention is dropped: spaCy's ner predicts no nesting
    assert "W201" in codes  # the empty dev split
    nlp = spacy.blank("en")
    (doc,) = DocBin().from_disk(tmp_path / "ner" / "train.spacy").get_docs(nlp.vocab)
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [
        ("Familial adenomatous polyposis", "Disease", "D011125"),
        ("colorectal cancer", "Disease", "D015179")]
    assert summary["train"] == {"docs": 1, "entities": 2, "labels": {"Disease": 2}}
    assert load_config(tmp_path / "ner" / "config.cfg")["nlp"]["lang"] == "en"


def test_ner_corpus_with_a_spans_key_keeps_the_nested_mentions(tmp_path):
    """--spans-key: the nested mention the NER's entities drop is in the span group, with
    the spancat config (the dataset's settings set in it); refused for annotation layers."""
    text = "Familial adenomatous polyposis and colorectal cancer."
    docs = [CorpusDoc("a", text, [GoldMention(0, 30, "SpecificDisease", "D011125"),
                                  GoldMention(9, 30, "Modifier", "D011125"),
                                  GoldMention(35, 52, "DiseaseClass", "D015179")])]
    write_jsonl(docs, tmp_path / "train.jsonl")
    write_jsonl(docs, tmp_path / "dev.jsonl")
    label_map = {"SpecificDisease": "Disease", "DiseaseClass": "Disease", "Modifier": None}
    summary = write_ner_corpus(tmp_path, tmp_path / "sc", lang="en", label_map=label_map,
                               config=SPANCAT_CONFIG, spans_key="sc",
                               settings={"training.optimizer.use_averages": True})
    (doc,) = DocBin().from_disk(tmp_path / "sc" / "train.spacy").get_docs(
        spacy.blank("en").vocab)
    assert [(s.text, s.label_) for s in doc.spans["sc"]] == [
        ("Familial adenomatous polyposis", "Disease"), ("adenomatous polyposis", "Modifier"),
        ("colorectal cancer", "Disease")]
    assert len(doc.ents) == 2 and summary["train"]["spans"] == 3
    config = load_config(tmp_path / "sc" / "config.cfg")
    assert config["nlp"]["pipeline"] == ["tok2vec", "spancat"]
    assert config["components"]["spancat"]["spans_key"] == "sc"
    layered = [CorpusDoc("a", text, docs[0].mentions, annotated_labels=["SpecificDisease"]),
               CorpusDoc("b", text, docs[0].mentions[2:], annotated_labels=["DiseaseClass"])]
    write_jsonl(layered, tmp_path / "train.jsonl")
    with pytest.raises(ValueError, match="E674"):
        write_ner_corpus(tmp_path, tmp_path / "sc2", lang="en", spans_key="sc")


def test_the_gpu_ner_config_is_valid():
    """configs/ner_trf.cfg builds (shrunk: no download, no GPU) with the NER listening to the
    transformer, and its initialize loaders resolve."""
    pytest.importorskip("spacy_curated_transformers")
    small = {f"components.transformer.model.{k}": v for k, v in {
        "num_hidden_layers": 1, "hidden_width": 32, "intermediate_width": 64,
        "num_attention_heads": 2, "vocab_size": 100}.items()}
    config = load_config(ROOT / "configs" / "ner_trf.cfg", overrides=small)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names == ["transformer", "ner"]
    assert nlp.get_pipe("ner").model.get_ref("tok2vec").name.startswith("last_transformer")
    loaders = spacy.registry.resolve(config["initialize"]["components"]["transformer"])
    assert set(loaders) == {"encoder_loader", "piecer_loader"}


def test_an_untrained_linker_stays_untrained(kb_tsv, tmp_path):
    """Assembling warns (W200) and does not flag the never fine-tuned LM as fine-tuned, so the
    assembled pipeline still warns at load (W103)."""
    nlp = spacy.blank("es")
    add_linker(nlp, kb_tsv, num_beams=2, n_best=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    linker = save_pipeline(nlp, tmp_path / "untrained", fine_tuned=False)
    with pytest.warns(UserWarning, match="W200"):
        assemble_pipeline(linker, _untrained_ner(tmp_path), tmp_path / "pipeline")
    with pytest.warns(UserWarning, match="W103"):
        spacy.load(tmp_path / "pipeline")


def test_the_linkers_own_segmenter_is_kept(kb_tsv, tmp_path):
    """With the factory of the linker pipeline's segmenter, that very segmenter (its settings)
    goes first, so raw notes are split as the linker's prompts were."""
    nlp = spacy.blank("es")
    nlp.add_pipe("syncabel_sentencizer", config={"extra_abbreviations": ["Hb."]})
    add_linker(nlp, kb_tsv, num_beams=2, n_best=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
        linker = save_pipeline(nlp, tmp_path / "linker")
        info = assemble_pipeline(linker, _untrained_ner(tmp_path),
                                 tmp_path / "pipeline", segmenter="syncabel_sentencizer")
        assembled = spacy.load(tmp_path / "pipeline")
    assert info["pipeline"] == ["syncabel_sentencizer", "ner", "syncabel_linker"]
    cfg = assembled.config["components"]["syncabel_sentencizer"]
    assert cfg["extra_abbreviations"] == ["Hb."]


def test_assemble_with_the_proposer_and_a_chosen_nil_threshold(linker_dir, ner_dir, tmp_path):
    """--proposer-corpus adds the dictionary proposer between NER and linker; --nil-threshold
    auto chooses the threshold on the gold mentions of another corpus and saves it."""
    from spacy_syncabel.linking.abstention import DEFAULT_THRESHOLDS
    from spacy_syncabel.training.pipeline_io import load_pipeline

    corpus = tmp_path / "train.jsonl"
    write_jsonl(_gold_docs(), corpus)
    with pytest.raises(ValueError, match="E542"):
        assemble_pipeline(linker_dir, ner_dir, tmp_path / "p", nil_threshold="auto")
    with pytest.raises(ValueError, match="E543"):
        assemble_pipeline(linker_dir, ner_dir, tmp_path / "p", nil_threshold="high")
    out = tmp_path / "pipeline"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = assemble_pipeline(linker_dir, ner_dir, out, proposer_corpus=corpus,
                                 nil_threshold="auto", threshold_corpus=corpus)
        nlp = load_pipeline(out)
    assert nlp.pipe_names == ["sentencizer", "tok2vec", "ner", "syncabel_dictionary_proposer",
                              "syncabel_linker"]
    assert info["proposer"]["phrases"] > 0 and info["nil_threshold"]["mentions"] > 0
    chosen = info["nil_threshold"]["threshold"]
    assert chosen in DEFAULT_THRESHOLDS
    assert nlp.get_pipe("syncabel_linker").settings.threshold == chosen
    assert load_config(out / "config.cfg")["components"]["syncabel_linker"]["threshold"] == chosen
    # the proposer's dictionary is the gold mentions: it finds those the NER left
    text = TEXTS[3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = {(e.start_char, e.end_char) for e in nlp(text).ents}
    gold = {(m.start, m.end) for m in _gold_docs()[3].mentions}
    assert gold <= found
    # a number is used as it is
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = assemble_pipeline(linker_dir, ner_dir, tmp_path / "q", nil_threshold="0.3",
                                 segmenter="none")
    assert info["nil_threshold"]["threshold"] == 0.3 and "proposer" not in info


def test_with_a_calibrator_the_chosen_nil_threshold_is_a_probability(linker_dir, ner_dir,
                                                                      tmp_path):
    """A linker with a fitted probability calibrator gets its NIL threshold on the calibrated
    probability (one scale for every path), not on the raw score."""
    import shutil

    from spacy_syncabel.training.pipeline_io import load_pipeline
    from spacy_syncabel.training.probability import calibrate_pipeline_probability

    corpus = tmp_path / "train.jsonl"
    write_jsonl(_gold_docs(), corpus)
    calibrated = tmp_path / "linker"
    shutil.copytree(linker_dir, calibrated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrate_pipeline_probability(calibrated, _gold_docs())
        info = assemble_pipeline(calibrated, ner_dir, tmp_path / "pipeline", segmenter="none",
                                 nil_threshold="auto", threshold_corpus=corpus)
        linker = load_pipeline(tmp_path / "pipeline").get_pipe("syncabel_linker")
    chosen = info["nil_threshold"]
    assert chosen["scale"] == "probability" and chosen["mentions"] > 0
    assert linker.settings.threshold == 0.0
    assert linker.calibrator is not None
    assert linker.calibrator.nil_threshold == (chosen["threshold"] or None)


SPANCAT_CONFIG = ROOT / "configs" / "spancat.cfg"


def _nested_docs():
    """The gold docs plus the KB names nested in another mention ('diabetes mellitus' in
    'diabetes mellitus tipo 2', 'neumonía' in 'neumonía adquirida en la comunidad')."""
    docs = _gold_docs()
    for doc in docs:
        extra = []
        for code, name, group in KB_ROWS:
            start = doc.text.find(name)
            if start >= 0 and all((m.start, m.end) != (start, start + len(name))
                                  for m in doc.mentions):
                extra.append(GoldMention(start, start + len(name), group, code))
        doc.mentions = sorted(doc.mentions + extra, key=lambda m: (m.start, m.end))
    return docs


@pytest.fixture(scope="module")
def spans_dir(tmp_path_factory):
    """configs/spancat.cfg (tok2vec + spancat on n-grams), fitted to the nested gold spans of
    the sentences."""
    nlp = load_model_from_config(load_config(SPANCAT_CONFIG), auto_fill=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gold = docs_to_spacy(nlp, _nested_docs(), spans_key="sc")
    return _fit_and_save(nlp, gold, 60, tmp_path_factory.mktemp("spans") / "model-best")


def test_assemble_with_a_span_categorizer_links_nested_spans(linker_dir, ner_dir, spans_dir,
                                                             tmp_path):
    """--spans puts the span categorizer (its own tok2vec) and syncabel_span_union before the
    linker, which then links the union's group: the NER's entities and the nested spans."""
    from spacy_syncabel.training.pipeline_io import load_pipeline

    out = tmp_path / "pipeline"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = assemble_pipeline(linker_dir, ner_dir, out, spans=spans_dir, spans_keep="all")
        nlp = load_pipeline(out)
        ner_only = spacy.load(ner_dir)
        spans_only = spacy.load(spans_dir)
    assert nlp.pipe_names == ["sentencizer", "tok2vec", "ner", "spans_tok2vec", "spancat",
                              "syncabel_span_union", "syncabel_linker"]
    assert info["spans"]["spans_key"] == "mentions" and info["spans"]["keep"] == "all"
    assert load_config(out / "config.cfg")["components"]["syncabel_linker"]["spans_key"] == \
        "mentions"
    text = TEXTS[0] + " " + TEXTS[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doc = nlp(text)
    group = {(s.start_char, s.end_char, s.label_) for s in doc.spans["mentions"]}
    ents = {(e.start_char, e.end_char, e.label_) for e in ner_only(text).ents}
    alone = spans_only(text)
    cats = {(s.start_char, s.end_char, s.label_) for s in alone.spans["sc"]}
    # the NER and the span categorizer each as they predict alone (no shared tensor mixed up)
    assert group == ents | cats and ents == {(e.start_char, e.end_char, e.label_)
                                             for e in doc.ents}
    start = text.index("diabetes mellitus tipo 2")
    assert (start, start + len("diabetes mellitus"), "ENFERMEDAD") in cats  # a nested span
    kb = nlp.get_pipe("syncabel_linker").kb
    for span in doc.spans["mentions"]:
        assert span._.syncabel and span.kb_id_ == span._.syncabel[0]["code"]
        assert span.label_ in kb.groups_of(span.kb_id_)
    # `link` writes the group's spans, nested ones included, not doc.ents only
    from spacy_syncabel.notes.command import run_link

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "n1.txt").write_text(text, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_link(out, tmp_path / "notes", tmp_path / "out.jsonl", progress=False)
    record = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert {(e["start"], e["end"], e["label"]) for e in record["entities"]} == group
    assert {e["code"] for e in record["entities"]} == {s.kb_id_ for s in doc.spans["mentions"]}
    with pytest.raises(ValueError, match="E672"):
        assemble_pipeline(linker_dir, ner_dir, tmp_path / "p", spans=ner_dir)
    with pytest.raises(ValueError, match="E670"):
        assemble_pipeline(linker_dir, ner_dir, tmp_path / "q", spans=spans_dir,
                          spans_keep="longest")
