"""The entity recognizer on SPACCC's annotation layers: trained briefly on a slice of the real
training split (one NER per layer, joined), it predicts every label on held-out documents."""
import warnings
from pathlib import Path
from collections import Counter

import pytest
import spacy
import srsly

from spacy_syncabel.corpus import read_corpus, write_jsonl
from spacy_syncabel.training.ner_corpus import annotation_layers, layer_docs, write_ner_corpus
from spacy_syncabel.training.ner_layers import read_layers, train_ner
from spacy_syncabel.types import CorpusDoc, GoldMention

from ..conftest import DATA, needs_data

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ner.cfg"
LABELS = {"ENFERMEDAD", "SINTOMA", "PROCEDIMIENTO"}


def test_layers_are_the_labels_some_documents_lack():
    a = CorpusDoc("a", "fiebre y TAC", [GoldMention(0, 6, "SINTOMA"), GoldMention(9, 12, "PROC")],
                  annotated_labels=["PROC", "SINTOMA"])
    b = CorpusDoc("b", "fiebre", [GoldMention(0, 6, "SINTOMA")], annotated_labels=["SINTOMA"])
    layers = annotation_layers([a, b])
    assert layers == [{"name": "all", "labels": ["SINTOMA"]},
                      {"name": "PROC", "labels": ["PROC"]}]
    assert [d.id for d in layer_docs([a, b], ["PROC"])] == ["a"]  # b never saw a procedure
    assert [len(d.mentions) for d in layer_docs([a, b], ["SINTOMA"])] == [1, 1]
    # annotated for everything everywhere: one layer, the old single NER
    assert annotation_layers([CorpusDoc("c", "x", [GoldMention(0, 1, "X")])]) == [
        {"name": "all", "labels": ["X"]}]


@needs_data
def test_spaccc_documents_carry_their_layers():
    docs = read_corpus(DATA / "spaccc" / "train.tsv")
    with_proc = sum(d.is_annotated("PROCEDIMIENTO") for d in docs)
    assert 200 < with_proc < len(docs) / 2  # the procedure layer covers a third of the split
    assert all(set(d.annotated_labels) == {m.label for m in d.mentions} for d in docs)


@needs_data
@pytest.mark.slow
def test_every_label_is_predicted_after_brief_training(tmp_path):
    docs = read_corpus(DATA / "spaccc" / "train.tsv")
    full = [d for d in docs if set(d.annotated_labels) == LABELS]
    held_out = full[:6]
    train = [d for d in docs if d not in held_out][:60]
    assert Counter(lab for d in train for lab in d.annotated_labels)["PROCEDIMIENTO"] < 40
    write_jsonl(train, tmp_path / "corpus" / "train.jsonl")
    write_jsonl(held_out, tmp_path / "corpus" / "dev.jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_ner_corpus(tmp_path / "corpus", tmp_path / "ner", lang="es", config=CONFIG)
        layers = read_layers(tmp_path / "ner")
        assert {lab for layer in layers for lab in layer["labels"]} == LABELS
        assert srsly.read_json(tmp_path / "ner" / "layers.json")["layers"] == layers
        info = train_ner(tmp_path / "ner", tmp_path / "out",
                         overrides={"training.max_steps": 200, "training.eval_frequency": 100})
    assert set(info["scores"]) == {layer["name"] for layer in layers}
    nlp = spacy.load(tmp_path / "out" / "model-best")
    predicted = Counter(e.label_ for doc in nlp.pipe(d.text for d in held_out) for e in doc.ents)
    assert set(predicted) == LABELS, predicted


def test_train_ner_refuses_an_output_that_is_its_input(tmp_path):
    from typer.testing import CliRunner

    from spacy_syncabel.cli import app

    corpus = tmp_path / "ner"
    corpus.mkdir()
    (corpus / "config.cfg").write_text("[nlp]\n", encoding="utf8")
    res = CliRunner().invoke(app, ["train-ner", str(corpus), "--output", str(corpus)])
    assert res.exit_code != 0 and "E300" in str(res.exception)
    assert sorted(p.name for p in corpus.iterdir()) == ["config.cfg"]  # nothing written


def _tiny_ner_corpus(folder: Path) -> Path:
    from spacy.tokens import DocBin, Span

    nlp = spacy.blank("es")
    db = DocBin()
    for text, (start, end) in [("Carcinoma ductal infiltrante de mama.", (0, 3)),
                               ("Se extirpa un adenocarcinoma de colon.", (3, 4))]:
        doc = nlp(text)
        doc.ents = [Span(doc, start, end, label="MORFOLOGIA_NEOPLASIA")]
        db.add(doc)
    folder.mkdir(parents=True)
    for split in ("train", "dev"):
        db.to_disk(folder / f"{split}.spacy")
    (folder / "config.cfg").write_text(CONFIG.read_text(encoding="utf8"), encoding="utf8")
    return folder


def test_train_ner_refuses_init_tok2vec_that_spacy_would_ignore(tmp_path):
    """The project's NER config has an empty [pretraining] section: spaCy would train from
    scratch and never read the weights. train-ner says so before training."""
    corpus = _tiny_ner_corpus(tmp_path / "ner")
    weights = tmp_path / "model2.bin"
    weights.write_bytes(b"not read")
    with pytest.raises(ValueError, match="E660"):
        train_ner(corpus, tmp_path / "out", overrides={
            "paths.init_tok2vec": str(weights), "training.max_steps": 2,
            "training.eval_frequency": 1})
    assert not (tmp_path / "out").exists()  # nothing trained


def test_a_config_with_the_pretraining_section_may_init_tok2vec(tmp_path):
    from spacy.cli.init_config import fill_config

    from spacy_syncabel.training.ner_layers import check_init_tok2vec

    filled = tmp_path / "pretrain.cfg"
    fill_config(filled, CONFIG, pretraining=True, silent=True)
    weights = tmp_path / "model2.bin"
    weights.write_bytes(b"")
    check_init_tok2vec(filled, {"paths.init_tok2vec": str(weights)})
    check_init_tok2vec(CONFIG)  # no weights: nothing to load, nothing to refuse
