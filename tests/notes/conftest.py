"""A saved pipeline that finds entities in raw text (entity_ruler) and links them (tiny Llama)."""
import warnings

import pytest
import spacy
from spacy.language import Language

from ..conftest import KB_ROWS, TEXTS

TINY = {"@misc": "spacy_syncabel.TinyLlama.v1", "hidden_size": 32, "num_layers": 1,
        "num_heads": 2, "intermediate_size": 64, "vocab_size": 400, "seed": 3}

# more raw notes than TEXTS: every KB name in a sentence of its own
NOTES = TEXTS + [f"Nota {i}: el paciente presenta {name} desde ayer." for i, (_, name, _) in
                 enumerate(KB_ROWS)]


@Language.component("fail_on_boom")
def fail_on_boom(doc):
    """Test-only component: raises on notes that contain BOOM (a crash in a component)."""
    if "BOOM" in doc.text:
        raise RuntimeError("BOOM in the note")
    return doc


def build_pipeline(kb_tsv, path, crash: bool = False):
    nlp = spacy.blank("es")
    ruler = nlp.add_pipe("entity_ruler")
    if crash:
        nlp.add_pipe("fail_on_boom")
    nlp.add_pipe("syncabel_linker", config={
        "model": TINY, "kb_loader": {"@misc": "spacy_syncabel.KBFromFile.v1", "path": str(kb_tsv)},
        "num_beams": 2, "n_best": 2, "max_new_tokens": 16, "batch_size": 32})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp.initialize()
    ruler.add_patterns([{"label": group, "pattern": name} for _, name, group in KB_ROWS])
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="session")
def pipeline_dir(kb_tsv, tmp_path_factory):
    return build_pipeline(kb_tsv, tmp_path_factory.mktemp("notes_pipe") / "pipeline")


@pytest.fixture(scope="session")
def crash_pipeline_dir(kb_tsv, tmp_path_factory):
    return build_pipeline(kb_tsv, tmp_path_factory.mktemp("notes_pipe") / "crashing", crash=True)


@pytest.fixture(scope="session")
def nlp(pipeline_dir):
    return spacy.load(pipeline_dir)


@pytest.fixture()
def notes_folder(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    for i, text in enumerate(NOTES):
        (folder / f"note{i:03d}.txt").write_text(text, encoding="utf-8")
    return folder
