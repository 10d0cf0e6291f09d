"""A saved pipeline that finds entities in raw text (entity_ruler) and links them (tiny Llama)."""
import warnings

import pytest
import spacy
from spacy.language import Language

from ..conftest import KB_ROWS, TEXTS, add_linker

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
    add_linker(nlp, kb_tsv, TINY, num_beams=2, n_best=2, max_new_tokens=16, batch_size=32)
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


def same_records(a, b, tol: float = 1e-4) -> bool:
    """Records equal in every id, offset, label, code and name; scores and log-probs equal
    within ``tol`` (relative): batches of other shapes pad differently, which moves float32
    sums in their last digits."""
    import math

    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and \
            all(same_records(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and \
            all(same_records(x, y, tol) for x, y in zip(a, b))
    return a == b
